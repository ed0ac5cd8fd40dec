"""CLIP baselines with a tiny random-weight open_clip model on the fixture data: parity with
CLIP_benchmark, mcq restriction, constructed matches, resume, data parallelism, bad inputs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from clsbench.clip_baselines.fixtures import build_tiny_clip, tiny_model_name
from clsbench.clip_baselines.models import PAPER_MODELS, LoadedModel, ModelError, load_model, resolve_model
from clsbench.clip_baselines.results import FORMAT, PredictionLog, RunSettings, load_runs, per_class_accuracy
from clsbench.clip_baselines.run import load_split, run_clip
from clsbench.clip_baselines.zeroshot import SINGLE_TEMPLATE, encode_classes, templates_for
from clsbench.tasks.data.loading import DataError, classnames_for, load_rows
from clsbench.tasks.data.samples import add_questions, open_image
from clsbench.tasks.runtime.errors import UnknownNameError

KEYS = ["food101", "caltech101"]  # one prompt / 34 prompts; 101 classes each
SUMMARY_KEYS = {
    "format",
    "class_names",
    "metrics",
    "paper_row",
    "model",
    "pretrained",
    "mode",
    "templates",
    "seed",
    "n_options",
    "negatives",
    "dataset",
    "accuracy",
    "n_samples",
    "per_class_accuracy",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> LoadedModel:
    folder = build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")
    return load_model(resolve_model(tiny_model_name(folder)))


def run(tiny, fixture_root, out, **kwargs):
    kwargs.setdefault("datasets", KEYS)
    kwargs.setdefault("cache_dir", out / "_cache")
    return run_clip(tiny, None, kwargs.pop("datasets"), out, data_dir=fixture_root, progress=False, **kwargs)


def predictions(out: Path, dataset: str) -> dict[str, dict]:
    (run_dir,) = [path for path in out.iterdir() if not path.name.startswith("_")]
    return PredictionLog(run_dir / f"{dataset}.predictions.jsonl").read()


class Wrapped(torch.nn.Module):
    """The tiny model's text tower, with an image tower chosen by the test."""

    def __init__(self, model, encode_image):
        super().__init__()
        self.model = model
        self.encode_image = encode_image
        self.calls = 0

    def encode_text(self, tokens):
        return self.model.encode_text(tokens)


def with_image_tower(tiny: LoadedModel, encode_image) -> LoadedModel:
    return replace(tiny, model=Wrapped(tiny.model, encode_image))


def oracle(tiny: LoadedModel, fixture_root: Path, key: str, target) -> LoadedModel:
    """An image tower that maps each fixture image exactly onto the text embedding of ``target(index, label)``."""
    classnames = classnames_for(key, fixture_root)
    weights = encode_classes(tiny.model, tiny.tokenizer, classnames, templates_for(key), tiny.device)
    rows = load_rows(key, fixture_root)
    table = {}
    for index, row in enumerate(rows):
        pixels = tiny.preprocess(open_image(row["image"], dataset=key, sample_key=str(index)))
        table[pixels.numpy().tobytes()] = weights[target(index, row["label"])]
    return with_image_tower(tiny, lambda images: torch.stack([table[image.numpy().tobytes()] for image in images]))


def test_paper_models_are_real_open_clip_pairs():
    import open_clip

    known = set(open_clip.list_pretrained())
    assert len(PAPER_MODELS) == 6
    for spec in PAPER_MODELS.values():
        assert (spec.model_name, spec.pretrained) in known, spec
    titles = {spec.title for spec in PAPER_MODELS.values()}
    assert titles == {
        "OpenAI CLIP ViT-L/14",
        "EVA-02-CLIP ViT-L/14",
        "DFN ViT-H/14",
        "OpenCLIP ConvNeXt-XXLarge",
        "OpenCLIP ViT-bigG/14",
        "SigLIP SO400M",
    }
    ref = resolve_model("openai-vit-l-14")
    assert (ref.model_name, ref.pretrained) == ("ViT-L-14-336-quickgelu", "openai")
    assert resolve_model("ViT-B-32", "laion2b_s34b_b79k").run_label == "ViT-B-32__laion2b_s34b_b79k"
    assert (
        resolve_model("hf-hub:timm/ViT-SO400M-14-SigLIP-384").run_label == "hf-hub_timm_ViT-SO400M-14-SigLIP-384__hub"
    )


def test_checkpoint_files_and_quickgelu_weights_load_right(tmp_path, monkeypatch):
    import open_clip

    checkpoint = tmp_path / "ckpt.pt"
    checkpoint.write_bytes(b"")
    ref = resolve_model("ViT-B-32", str(checkpoint))
    assert ref.pretrained == str(checkpoint.resolve()) and ref.run_label.startswith("ViT-B-32__ckpt.pt-")
    seen = []

    def fake_create(name, pretrained=None, cache_dir=None, **kwargs):
        seen.append(kwargs.get("force_quick_gelu", False))
        raise RuntimeError("stop before any download")

    monkeypatch.setattr(open_clip, "create_model_and_transforms", fake_create)
    for name, tag in (("ViT-B-32", "openai"), ("ViT-B-32-quickgelu", "openai"), ("ViT-B-32", "laion2b_s34b_b79k")):
        with pytest.raises(ModelError, match="could not load"):
            load_model(resolve_model(name, tag))
    assert seen == [True, False, False]  # OpenAI weights trained with QuickGELU get it even under the plain name


def test_bad_model_names_say_how_to_find_valid_ones(capsys, fixture_root):
    with pytest.raises(ModelError, match=r"unknown model 'ViT-L-14-999'.*Did you mean.*list_pretrained"):
        resolve_model("ViT-L-14-999")
    with pytest.raises(
        ModelError,
        match=r"unknown pretrained tag .openia. for ViT-B-32, and no such checkpoint file; its tags: "
        r".*Did you mean openai",
    ):
        resolve_model("ViT-B-32", "openia")
    with pytest.raises(ModelError, match="drop --pretrained"):
        resolve_model("siglip-so400m", "openai")
    from clsbench.tasks.cli.main import main

    assert main(["clip", "--model", "no-such-clip", "--data-dir", str(fixture_root)]) == 2
    assert "unknown model 'no-such-clip'" in capsys.readouterr().err


def test_missing_or_unknown_dataset_is_a_clear_error(tiny, tmp_path, monkeypatch):
    with pytest.raises(DataError, match="clsbench prepare --datasets logo"):
        run_clip(tiny, None, ["logo"], tmp_path / "out", data_dir=tmp_path / "empty", progress=False)
    monkeypatch.setattr(
        "clsbench.clip_baselines.run.load_model", lambda *a, **k: pytest.fail("model loaded before the data check")
    )
    with pytest.raises(DataError, match="no prepared data at .*logo"):
        run_clip(
            "openai-vit-l-14", None, ["food101", "logo"], tmp_path / "out", data_dir=tmp_path / "empty", progress=False
        )
    with pytest.raises(UnknownNameError, match="unknown dataset 'food102'; did you mean food101"):
        run_clip(tiny, None, ["food102"], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.json"))


def test_full_mode_equals_clip_benchmark_per_sample(tiny, fixture_root, tmp_path):
    from clip_benchmark.metrics.zeroshot_classification import run_classification, zero_shot_classifier

    summaries = run(tiny, fixture_root, tmp_path, mode="full", batch_size=4)

    class Images(torch.utils.data.Dataset):  # what clip_benchmark's loaders yield: (transformed image, label)
        def __init__(self, key):
            self.rows = load_rows(key, fixture_root)

        def __len__(self):
            return len(self.rows)

        def __getitem__(self, index):
            return tiny.preprocess(self.rows[index]["image"].convert("RGB")), self.rows[index]["label"]

    for key in KEYS:
        prompts = [template.replace("{}", "{c}") for template in templates_for(key)]  # CLIP_benchmark's placeholder
        classifier = zero_shot_classifier(
            tiny.model, tiny.tokenizer, list(classnames_for(key, fixture_root)), prompts, "cpu", amp=False
        )
        logits, target = run_classification(
            tiny.model, classifier, torch.utils.data.DataLoader(Images(key), batch_size=3), "cpu", amp=False
        )
        ours_weights = encode_classes(
            tiny.model, tiny.tokenizer, classnames_for(key, fixture_root), templates_for(key), tiny.device
        )
        torch.testing.assert_close(ours_weights.t(), classifier, rtol=0, atol=1e-6)  # same prompt ensemble, same maths
        theirs = logits.argmax(dim=1).tolist()
        ours = predictions(tmp_path, key)
        assert [ours[str(index)]["prediction"] for index in range(len(theirs))] == theirs
        assert len(set(theirs)) > 1  # a model that always answers one class would prove nothing
        expected = sum(p == t for p, t in zip(theirs, target.tolist())) / len(theirs)
        assert summaries[key]["accuracy"] == pytest.approx(expected)
        # The metrics block is CLIP_benchmark's own, computed by its own functions on the same logits.
        from sklearn.metrics import balanced_accuracy_score

        # CLIP_benchmark's accuracy(output, target, topk) (zeroshot_classification.py), whose float() of a
        # 1-element array fails under NumPy 2.x, computed the same way here: top-k hits over all samples.
        top = logits.topk(5, 1, True, True)[1].t()
        hits = top.eq(target.view(1, -1).expand_as(top))
        acc1, acc5 = (float(hits[:k].reshape(-1).float().sum()) / len(target) for k in (1, 5))
        metrics = summaries[key]["metrics"]
        assert metrics["acc1"] == pytest.approx(acc1) and metrics["acc5"] == pytest.approx(acc5)
        assert metrics["mean_per_class_recall"] == pytest.approx(balanced_accuracy_score(target, logits.argmax(dim=1)))


def test_mcq_asks_the_mllm_questions_and_answers_among_the_options(tiny, fixture_root, tmp_path):
    summaries = run(tiny, fixture_root, tmp_path, datasets=["flowers102", "logo"])
    for key in ("flowers102", "logo"):
        classnames = classnames_for(key, fixture_root)
        docs = add_questions(load_rows(key, fixture_root), key)
        records = predictions(tmp_path, key)
        assert len(records) == len(docs) == summaries[key]["n_samples"]
        for doc in docs:
            record = records[doc["sample_key"]]
            assert [classnames[index] for index in record["options"]] == doc["options"]
            assert record["answer"] == doc["answer"]
            assert record["prediction"] in record["options"]
            assert record["options"][ord(record["letter"]) - ord("A")] == record["prediction"]
            assert record["correct"] == int(record["letter"] == record["answer"])
        summary = json.loads((next(tmp_path.glob(f"*/{key}.json"))).read_text())
        assert set(summary) == SUMMARY_KEYS
        assert summary["format"] == FORMAT and summary["mode"] == "mcq" and summary["n_options"] == 26
        assert {len(record["options"]) for record in records.values()} == {min(26, len(classnames))}
        assert summary["accuracy"] == sum(r["correct"] for r in records.values()) / len(records)


def test_mcq_is_never_below_full_mode_on_a_sample(tiny, fixture_root, tmp_path):
    """The right class is always among the options, so a right full-mode answer stays right in mcq mode."""
    for key in ("caltech101", "stanfordcars"):
        run(tiny, fixture_root, tmp_path / "full", datasets=[key], mode="full", cache_dir=tmp_path / "cache")
        run(tiny, fixture_root, tmp_path / "mcq", datasets=[key], cache_dir=tmp_path / "cache")
        full, mcq = predictions(tmp_path / "full", key), predictions(tmp_path / "mcq", key)
        for sample_key, record in full.items():
            if record["prediction"] in mcq[sample_key]["options"]:
                assert mcq[sample_key]["prediction"] == record["prediction"]
            assert mcq[sample_key]["correct"] >= record["correct"]


def test_constructed_matching_pairs_score_right_and_mcq_cannot_leave_the_options(tiny, fixture_root, tmp_path):
    key = "food101"
    right = oracle(tiny, fixture_root, key, lambda index, label: label)
    assert run(right, fixture_root, tmp_path / "a", datasets=[key], mode="full")[key]["accuracy"] == 1.0
    assert run(right, fixture_root, tmp_path / "b", datasets=[key])[key]["accuracy"] == 1.0

    split = load_split(key, RunSettings("m", None, "m"), fixture_root)
    outside = {
        index: min(set(range(len(split.classnames))) - set(split.options[index].tolist()))
        for index in range(len(split.labels))
    }
    lured = oracle(tiny, fixture_root, key, lambda index, label: outside[index])
    run(lured, fixture_root, tmp_path / "c", datasets=[key], mode="full")
    run(lured, fixture_root, tmp_path / "d", datasets=[key])
    full, mcq = predictions(tmp_path / "c", key), predictions(tmp_path / "d", key)
    for sample_key, record in mcq.items():
        assert full[sample_key]["prediction"] == outside[int(sample_key)]  # full mode follows the lure...
        assert record["prediction"] in record["options"]  # ...mcq mode stays within the question


def test_interrupted_run_resumes_without_losing_or_redoing_work(tiny, fixture_root, tmp_path):
    key = "food101"
    reference = run(tiny, fixture_root, tmp_path / "ref", datasets=[key], batch_size=2, flush_every=2)
    seen = []

    def crashing(images):
        if len(seen) == 2:
            raise RuntimeError("simulated crash")
        seen.append(len(images))
        return tiny.model.encode_image(images)

    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(with_image_tower(tiny, crashing), fixture_root, out, datasets=[key], batch_size=2, flush_every=2)
    assert len(predictions(out, key)) == 4 and not list(out.glob(f"*/{key}.json"))
    jsonl = next(out.glob(f"*/{key}.predictions.jsonl"))
    with open(jsonl, "a") as handle:
        handle.write('{"sample_key": "4", "lab')  # a write torn by the crash

    seen.clear()
    resumed = run(
        with_image_tower(tiny, lambda images: seen.append(len(images)) or tiny.model.encode_image(images)),
        fixture_root,
        out,
        datasets=[key],
        batch_size=2,
        flush_every=2,
    )
    assert sum(seen) == 2  # only the two samples without a prediction were encoded
    assert resumed[key] == reference[key]
    assert predictions(out, key) == predictions(tmp_path / "ref", key)
    seen.clear()
    assert (
        run(with_image_tower(tiny, lambda images: seen.append(1)), fixture_root, out, datasets=[key])[key]
        == reference[key]
    )
    assert not seen  # a completed dataset is read back, not recomputed


def test_a_truncated_summary_is_recomputed_from_the_predictions_saying_so(tiny, fixture_root, tmp_path, capsys):
    """Issue 26: rerunning over a torn <dataset>.json gave a bare JSONDecodeError with no file name and no fix."""
    first = run(tiny, fixture_root, tmp_path, datasets=["logo"])
    (summary,) = tmp_path.glob("*/logo.json")
    text = summary.read_text()
    summary.write_text(text[: len(text) // 2])
    capsys.readouterr()
    seen = []
    again = run(with_image_tower(tiny, lambda images: seen.append(1)), fixture_root, tmp_path, datasets=["logo"])
    assert again["logo"] == first["logo"] and not seen  # from the kept predictions: nothing encoded again
    err = capsys.readouterr().err
    assert f"{summary} is not readable JSON" in err and "recomputing it from" in err
    assert json.loads(summary.read_text()) == first["logo"]


def test_resume_refuses_predictions_made_for_other_questions(tiny, fixture_root, tmp_path):
    run(tiny, fixture_root, tmp_path, datasets=["logo"])
    (summary,) = tmp_path.glob("*/logo.json")
    summary.unlink()
    jsonl = summary.with_name("logo.predictions.jsonl")
    lines = jsonl.read_text().splitlines()
    first = json.loads(lines[0])
    first["options"] = first["options"][::-1]
    jsonl.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match="does not match this data or these options"):
        run(tiny, fixture_root, tmp_path, datasets=["logo"])


def test_text_embeddings_are_cached_per_model_classes_and_templates(tiny, fixture_root, tmp_path):
    calls = []

    def counting(tokens):
        calls.append(len(tokens))
        return tiny.model.encode_text(tokens)

    counted = replace(tiny, model=Wrapped(tiny.model, tiny.model.encode_image))
    counted.model.encode_text = counting
    cache = tmp_path / "cache"
    run(counted, fixture_root, tmp_path / "a", datasets=["caltech101"], cache_dir=cache)
    assert sum(calls) == 101 * 34 and len(list(cache.iterdir())) == 1
    run(counted, fixture_root, tmp_path / "b", datasets=["caltech101"], mode="full", cache_dir=cache)
    assert sum(calls) == 101 * 34  # the full-mode run reused the mcq run's embeddings
    run(counted, fixture_root, tmp_path / "c", datasets=["caltech101"], templates="single", cache_dir=cache)
    assert sum(calls) == 101 * 35 and len(list(cache.iterdir())) == 2
    assert templates_for("caltech101", "single") == (SINGLE_TEMPLATE,)


def test_single_template_is_printed_by_the_papers_without_a_full_stop():
    # P3 (5-way CLIP-hard) and P2 print the CLIP prompt as "a photo of a {classname}" (tasks/data/paper/prompts.md,
    # "P3: 5-way MCQ": CLIP: "a photo of a {classname}"); clsbench 0.3 used "a photo of a {}." with a full stop.
    from importlib import resources

    printed = resources.files("clsbench.tasks").joinpath("data", "paper", "prompts.md").read_text("utf-8")
    assert 'CLIP: "a photo of a {classname}".' in printed
    assert SINGLE_TEMPLATE == "a photo of a {classname}".replace("{classname}", "{}")
    assert SINGLE_TEMPLATE.format("tench") == "a photo of a tench"


def test_run_names_and_results_reader(tiny, fixture_root, tmp_path):
    settings = RunSettings("ViT-B-32", "openai", "ViT-B-32__openai")
    assert settings.run_name == "ViT-B-32__openai"
    assert replace(settings, templates="single", mode="full", seed=3).run_name == "ViT-B-32__openai__single__full"
    assert replace(settings, seed=1, n_options=4).run_name == "ViT-B-32__openai__seed1__n4"
    run(tiny, fixture_root, tmp_path, datasets=["logo"])
    run(tiny, fixture_root, tmp_path, datasets=["logo"], mode="full", templates="single")
    runs = load_runs(tmp_path)
    assert sorted(name.split("__", 2)[-1] for name in runs) == ["local", "single__full"]
    assert all(set(run_) == {"logo"} for run_ in runs.values())
    names = ("missile", "tank", "missile")
    records = [{"label": 0, "correct": 1}, {"label": 2, "correct": 0}, {"label": 2, "correct": 1}]
    assert per_class_accuracy(records, names) == {"missile [0]": 1.0, "missile [2]": 0.5}


def test_cli_writes_results_and_a_table(tiny, fixture_root, tmp_path, capsys):
    from clsbench.tasks.cli.main import main

    model = tiny.ref.model_name
    args = [
        "clip",
        "--model",
        model,
        "--datasets",
        "logo,cub200",
        "--output-dir",
        str(tmp_path),
        "--data-dir",
        str(fixture_root),
        "--cache-dir",
        str(tmp_path / "_cache"),
        "--no-progress",
    ]
    assert main(args) == 0
    output = capsys.readouterr().out
    assert "logo: accuracy" in output and "| Model | IMN |" in output
    assert "CLIP_benchmark's CSV of this run: clip_benchmark build " in output  # its folder, not the run's (issue 26)
    written = {
        path.name for path in tmp_path.glob("*/*") if "_cache" not in path.parts and not path.name.startswith(".")
    }
    assert written == {
        "logo.json",
        "logo.predictions.jsonl",
        "cub200.json",
        "cub200.predictions.jsonl",
        "clsbench_versions.json",
        "fingerprint.json",
        "clip_benchmark",  # the same results in CLIP_benchmark's format, for its `build`
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_give_the_same_predictions_as_one(tiny, fixture_root, tmp_path):
    """Two CPU processes under torchrun (what `accelerate launch --multi_gpu` starts) against one."""
    keys = ["logo", "cub200"]
    run(tiny, fixture_root, tmp_path / "one", datasets=keys, batch_size=2, flush_every=2)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        "-m",
        "clsbench.clip_baselines",
        "--model",
        tiny.ref.model_name,
        "--datasets",
        ",".join(keys),
        "--cpu",
        "--batch-size",
        "2",
        "--flush-every",
        "2",
        "--output-dir",
        str(tmp_path / "two"),
        "--data-dir",
        str(fixture_root),
        "--cache-dir",
        str(tmp_path / "two_cache"),
        "--no-progress",
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("logo: accuracy") == 1  # only the main process reports
    for key in keys:
        assert predictions(tmp_path / "two", key) == predictions(tmp_path / "one", key)
        one, two = (json.loads(next((tmp_path / name).glob(f"*/{key}.json")).read_text()) for name in ("one", "two"))
        assert one == two


def test_demo_row(tmp_path):
    from clsbench.clip_baselines.demo import run_clip_demo
    from clsbench.tasks.data.fixtures import write_fixture_data

    data = write_fixture_data(tmp_path / "data", 4, keys=["logo", "flowers102"])
    scores = run_clip_demo(tmp_path / "demo", data)
    assert set(scores) == {"logo", "flowers102"} and all(0 <= value <= 1 for value in scores.values())
    assert run_clip_demo(tmp_path / "demo", data) == scores


def test_the_fast_clean_gives_open_clips_own_tokens_for_every_prompt():
    """``fast_clean`` skips ftfy only where it is the identity: every dataset's prompts (every class-name set,
    every template) tokenize exactly as with open_clip's own tokenizer, and text ftfy would fix still goes to it."""
    import open_clip

    from clsbench.clip_baselines.models import fast_clean
    from clsbench.clip_baselines.zeroshot import fill
    from clsbench.tasks.protocol.registry import DATASETS

    theirs = open_clip.get_tokenizer("ViT-B-32")
    ours = fast_clean(open_clip.get_tokenizer("ViT-B-32"))
    assert ours.clean_fn.__name__ == "_clean_lower_fast"
    prompts = [  # every class name of every set with a few templates, and every template with a few names
        fill(template, name)
        for spec in DATASETS.values()
        for name_set in spec.name_sets
        for index, name in enumerate(spec.names(name_set) or ())
        for template in (spec.templates if index < 3 else spec.templates[:2])
    ]
    prompts += ["a photo of a Caf\u00e9 &amp; bar.", "  a  photo\tof a\nfox  ", "a photo of a \u201cquoted\u201d thing"]
    assert len(prompts) > 5_000
    for start in range(0, len(prompts), 4096):
        chunk = prompts[start : start + 4096]
        assert torch.equal(ours(chunk), theirs(chunk))


def _clip_benchmark_dispatch() -> tuple[set[str], set[str]]:
    """The dataset names CLIP_benchmark's installed ``builder.py`` dispatches on: ``build_dataset``'s plain names
    and ``build_vtab_dataset``'s (``vtab/<name>``), read from its source rather than typed here."""
    import ast

    import clip_benchmark.datasets.builder as builder

    tree = ast.parse(Path(builder.__file__).read_text("utf-8"))
    found: dict[str, set[str]] = {}
    for function in (node for node in tree.body if isinstance(node, ast.FunctionDef)):
        names = found.setdefault(function.name, set())
        for node in ast.walk(function):
            if isinstance(node, ast.Compare) and getattr(node.left, "id", None) == "dataset_name":
                for right in node.comparators:
                    values = right.elts if isinstance(right, ast.Tuple) else [right]
                    names |= {v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)}
    return found["build_dataset"], found["build_vtab_dataset"]


def test_every_clip_benchmark_name_of_our_datasets_is_accepted():
    """Issue 26: `wds/imagenet1k`, `vtab/caltech101`, `cub`, ... were skipped. Every name CLIP_benchmark's code gives
    one of our datasets (plain, `vtab/`, its short form, `wds/` of each) means that dataset, and every name we
    claim is one its builder really dispatches on; its own class lists back the mapping."""
    import clip_benchmark

    from clsbench.tasks.protocol.catalog import resolve_datasets
    from clsbench.tasks.protocol.registry import DATASETS, clip_benchmark_names, dataset_for_name

    plain, vtab = _clip_benchmark_dispatch()
    assert {"imagenet1k", "cars", "food101", "objectnet"} <= plain and {"cub", "caltech101", "flowers"} <= vtab
    ours = {spec.key: spec.clip_benchmark for spec in DATASETS.values() if spec.clip_benchmark}
    for names in ours.values():
        for name in names:  # each is real: a plain builder name or vtab/<a vtab builder name>
            assert (name.removeprefix("vtab/") in vtab) if name.startswith("vtab/") else (name in plain), name
    for short in vtab | plain:  # every form of a name we map maps to the same dataset
        forms = [short] + [f"wds/{short}"] * (short in plain)
        forms += [f"vtab/{short}", f"wds/vtab/{short}", f"wds/vtab-{short}"] * (short in vtab)
        keys = {form: dataset_for_name(form) for form in forms}
        if any(keys.values()):
            assert len(set(keys.values())) == 1, keys
    issue = ["wds/imagenet1k", "wds/food101", "wds/imagenetv2", "wds/objectnet", "wds/vtab/caltech101"]
    issue += ["wds/vtab/flowers", "wds/cars", "vtab/caltech101", "cub", "vtab/cub", "wds/vtab/pets", "vtab/pets"]
    assert resolve_datasets(issue) == ["imagenet", "food101", "imagenetv2", "objectnet", "caltech101"] + [
        "flowers102",
        "stanfordcars",
        "cub200",
        "pets",
    ]
    assert set(ours) == {spec.key for spec in DATASETS.values()} - {"gldv2", "logo"}  # those two it does not have
    assert all(dataset_for_name(name) == key for key in ours for name in clip_benchmark_names(DATASETS[key]))
    # CLIP_benchmark's own class lists are ours (Caltech-101's less the background class we skip)
    theirs = json.loads((Path(clip_benchmark.__file__).parent / "datasets" / "en_classnames.json").read_text())
    for name, names in theirs.items():
        key = dataset_for_name(name)
        if key is not None:
            mine = set(DATASETS[key].names("openai" if "openai" in DATASETS[key].name_sets else "paper"))
            assert set(names) - {"background"} == mine, name


def test_clip_benchmark_build_makes_its_csv_from_a_run_folder(tiny, fixture_root, tmp_path):
    """Issue 26: `clip_benchmark build` on a run folder died with KeyError 'metrics'. Each run folder now has a
    clip_benchmark/ folder in its format; its real `build` command (as its users run it) makes the CSV."""
    import csv

    summaries = run(tiny, fixture_root, tmp_path, datasets=["wds/vtab/flowers", "cub", "logo"], templates="single")
    (run_dir,) = [path for path in tmp_path.iterdir() if not path.name.startswith("_")]
    output = tmp_path / "benchmark.csv"
    command = [str(Path(sys.executable).with_name("clip_benchmark")), "build", str(run_dir / "clip_benchmark")]
    done = subprocess.run([*command, "--output", str(output)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {row["dataset"]: row for row in csv.DictReader(output.open())}
    assert set(rows) == {"vtab/flowers", "vtab/cub", "logo"}  # CLIP_benchmark's names; ours where it has none
    for key, name in [("flowers102", "vtab/flowers"), ("cub200", "vtab/cub"), ("logo", "logo")]:
        row = rows[name]
        assert float(row["acc1"]) == summaries[key]["accuracy"] and row["clsbench_dataset"] == key
        assert row["task"] == "zeroshot_classification" and row["clsbench_mode"] == "mcq"
        assert row["model_fullname"] == f"{tiny.ref.model_name} "  # its `model + ' ' + pretrained`
    from clsbench.tasks.report.build import write_report

    table = write_report([tmp_path], tmp_path / "report", figures=False, echo=None)
    assert table.count("\n") == 2  # header, rule, one row: the copies are not read as a second row
