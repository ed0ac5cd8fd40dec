"""Nothing computed is lost, nothing silently mixed: resumable runs, fingerprints, locks, one decoder, named errors."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
from PIL import Image, ImageFile

from clsbench.models.engine.answer_store import AnswerStore, answer_key
from clsbench.models.engine.answering import DecisionLog
from clsbench.tasks.data.fixtures import synthetic_image, write_fixture_dataset
from clsbench.tasks.data.images import ImageDecodeError, decode_image
from clsbench.tasks.data.loading import META_FILE, DataError, load_rows, write_prepared
from clsbench.tasks.data.samples import add_questions
from clsbench.tasks.protocol.draws import build_question
from clsbench.tasks.protocol.questions import SampleError
from clsbench.tasks.protocol.registry import DATASETS
from clsbench.tasks.runtime.stores import OutputLock, OutputLocked, StoreMismatch, weights_fingerprint

CLSBENCH = [sys.executable, "-m", "clsbench.tasks.cli"]
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
LOGO = list(DATASETS["logo"].classnames)


# ---------------------------------------------------------------- resumable MLLM runs


def _entries(store: Path) -> list[dict]:
    lines = []
    for path in sorted(store.glob("*_rank*.jsonl")):
        for line in path.read_text("utf-8").splitlines(keepends=True):
            if line.endswith("\n"):
                record = json.loads(line)
                if "key" in record:
                    lines.append(record)
    return lines


def _lmms(root, tiny_llava, store, out, extra_args=""):
    return [
        *CLSBENCH,
        "lmms",
        "--data-dir",
        str(root),
        "--model",
        "clsbench_hf",
        "--model_args",
        f"pretrained={tiny_llava},mode=generate,log_dir=none,answer_store={store}{extra_args}",
        "--tasks",
        "cls_logo_mcq",
        "--batch_size",
        "1",
        "--log_samples",
        "--output_path",
        str(out),
    ]


def _replies(out: Path) -> dict[int, str]:
    samples = next(out.rglob("*_samples_cls_logo_mcq.jsonl"))
    replies = {}
    for entry in map(json.loads, samples.read_text().splitlines()):
        reply = entry["filtered_resps"]  # lmms-eval 0.7.3 logs the filtered reply as a string, older ones as a list
        replies[entry["doc_id"]] = reply if isinstance(reply, str) else reply[0]
    return replies


def test_a_killed_lmms_run_resumes_and_loses_at_most_the_batch_in_flight(tiny_llava, tmp_path):
    total = 48  # long enough to kill mid-run (a tiny-model question takes ~0.1 s), short enough to run three times
    root = tmp_path / "data"
    write_fixture_dataset(root, "logo", total)
    store = tmp_path / "answers"
    run = subprocess.Popen(
        _lmms(root, tiny_llava, store, tmp_path / "killed"),
        env=OFFLINE,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while len(_entries(store)) < 8:
        assert run.poll() is None, "the run ended before it could be killed: make it longer"
        assert time.time() < deadline, "no answers were stored"
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    before = _entries(store)
    assert 8 <= len(before) < total

    resumed = subprocess.run(
        _lmms(root, tiny_llava, store, tmp_path / "resumed"), env=OFFLINE, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = _entries(store)
    assert len(after) == total and len({entry["key"] for entry in after}) == total  # nothing stored was recomputed
    assert after[: len(before)] == before
    assert f"{len(before)} of {total} replies reused" in resumed.stderr

    fresh = subprocess.run(
        _lmms(root, tiny_llava, "none", tmp_path / "fresh"), env=OFFLINE, capture_output=True, text=True, timeout=600
    )
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert _replies(tmp_path / "resumed") == _replies(tmp_path / "fresh")


def test_a_store_rerun_with_other_generation_settings_gives_a_fresh_runs_replies(tiny_llava, tmp_path):
    """Issue 25, item 1: --gen_kwargs max_new_tokens=1 on a store of 16-token replies served the old replies."""
    root = tmp_path / "data"
    write_fixture_dataset(root, "logo", 8)
    store = tmp_path / "answers"
    one_token = ["--gen_kwargs", "max_new_tokens=1"]

    def run(command):
        done = subprocess.run(command, env=OFFLINE, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    run(_lmms(root, tiny_llava, store, tmp_path / "long"))
    rerun = run(_lmms(root, tiny_llava, store, tmp_path / "short") + one_token)
    assert "replies reused" not in rerun.stderr
    run(_lmms(root, tiny_llava, "none", tmp_path / "fresh") + one_token)
    assert _replies(tmp_path / "short") == _replies(tmp_path / "fresh") != _replies(tmp_path / "long")
    again = run(_lmms(root, tiny_llava, store, tmp_path / "again") + one_token)  # the same settings do hit
    assert "8 of 8 replies reused" in again.stderr and _replies(tmp_path / "again") == _replies(tmp_path / "fresh")


def test_generation_settings_are_part_of_the_answer_key():
    from types import SimpleNamespace

    from clsbench.models.engine.settings import TransformersSettings
    from clsbench.models.lmms.clsbench_hf import ClsbenchHF

    model = SimpleNamespace(mode="generate", settings=TransformersSettings())
    settings = ClsbenchHF.reply_settings
    assert settings(model, {"until": "\n"}) == {"until": ["\n"], "max_new_tokens": 16}
    keys = {
        answer_key("t", 0, "p", None, [], settings(model, kwargs))
        for kwargs in ({}, {"max_new_tokens": 1}, {"until": ["."]}, {"temperature": 0.7}, {"num_beams": 2})
    }
    assert len(keys) == 5
    model.mode = "score"  # no generation setting changes a scored letter: keys stay as before
    scored = answer_key("t", 0, "p", None, [], settings(model, {"max_new_tokens": 1}))
    assert scored == answer_key("t", 0, "p", None, [])


def test_lmms_refuses_use_cache_with_clsbench_hf_and_warns_for_other_models(tmp_path):
    """Issue 25, item 3: --use_cache served 24/24 stale replies after a weights change, past the store's check."""
    command = [*CLSBENCH, "lmms", "--model", "clsbench_hf", "--model_args", "pretrained=x", "--tasks", "cls_logo_mcq"]
    refused = subprocess.run(
        [*command, "--use_cache", str(tmp_path / "cache")], env=OFFLINE, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2
    assert "--use_cache with --model clsbench_hf is refused" in refused.stderr
    assert "dataset could not be loaded" not in refused.stderr and not (tmp_path / "cache").exists()

    from clsbench.tasks.toolkits.lmms_runner import use_cache_refusal

    assert use_cache_refusal(["--model", "llava_hf", "--use_cache", "c"]) is None  # other models: a warning only
    assert use_cache_refusal(["--model", "clsbench_hf"]) is None


def test_a_resume_makes_the_decision_log_whole_from_the_store(tiny_llava, tmp_path):
    """Issue 25, item 4: a kill between the store write and the log write lost decision records for good."""
    root, logs = tmp_path / "data", tmp_path / "logs"
    write_fixture_dataset(root, "logo", 8)

    def run(out):
        command = _lmms(root, tiny_llava, tmp_path / "answers", out)
        command = [arg.replace("mode=generate,log_dir=none", f"mode=score,log_dir={logs}") for arg in command]
        done = subprocess.run(command, env=OFFLINE, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]

    run(tmp_path / "first")
    (log,) = logs.glob("*cls_logo_mcq.jsonl")
    whole = {json.loads(line)["doc_id"]: json.loads(line) for line in log.read_text().splitlines()}
    assert sorted(whole) == list(range(8))
    log.write_text("".join(line + "\n" for line in log.read_text().splitlines()[:3]))  # the kill lost five
    run(tmp_path / "resumed")
    restored = {json.loads(line)["doc_id"]: json.loads(line) for line in log.read_text().splitlines()}
    assert restored == whole and len(log.read_text().splitlines()) == 8
    run(tmp_path / "again")  # a whole log gets nothing twice
    assert len(log.read_text().splitlines()) == 8


def _garble_line(path: Path, number: int) -> list[str]:
    lines = path.read_text("utf-8").splitlines(keepends=True)
    lines[number - 1] = '{"key": "half a line\n'
    path.write_text("".join(lines), "utf-8")
    return lines


def test_a_garbled_line_in_the_middle_of_a_store_is_skipped_and_the_rest_kept(tmp_path, capsys):
    """Issue 25, item 5: one garbled line deleted every later line from disk (151 of 200 answers recomputed)."""
    fingerprint = {"model": "m", "mode": "score"}
    with AnswerStore(tmp_path, "m_score", fingerprint) as store:
        store.add([{"key": f"k{i}", "reply": "B"} for i in range(10)])
    lines = _garble_line(store.path, 4)  # the header, then k0 k1 [k2 garbled] k3 ...
    with AnswerStore(tmp_path, "m_score", fingerprint) as store:
        assert sorted(store.entries) == sorted(f"k{i}" for i in range(10) if i != 2)
        store.add([{"key": "k2", "reply": "C"}])
    assert store.path.read_text("utf-8").splitlines(keepends=True)[:11] == lines  # nothing cut
    assert f"{store.path}: skipped 1 unreadable line(s) (line 4)" in capsys.readouterr().err
    with AnswerStore(tmp_path, "m_score", fingerprint) as store:
        assert len(store.entries) == 10 and store.get("k2")["reply"] == "C"
    with open(store.path, "a") as handle:
        handle.write('{"key": "torn')  # a kill mid-write: cut off, as before
    with AnswerStore(tmp_path, "m_score", fingerprint) as store:
        assert len(store.entries) == 10
    assert store.path.read_text("utf-8").endswith("\n")


def test_a_garbled_line_in_the_middle_of_clip_predictions_is_skipped_and_the_rest_kept(fixture_root, tmp_path, capsys):
    from clsbench.clip_baselines.fixtures import build_tiny_clip, tiny_model_name
    from clsbench.clip_baselines.run import run_clip

    model = tiny_model_name(build_tiny_clip(tmp_path / "tiny-clip"))
    kwargs = dict(data_dir=fixture_root, cache_dir=tmp_path / "cache", progress=False)
    run_clip(model, None, ["logo"], tmp_path / "out", **kwargs)
    (predictions,) = (tmp_path / "out").rglob("logo.predictions.jsonl")
    garbled_key = json.loads(predictions.read_text("utf-8").splitlines()[1])["sample_key"]
    lines = _garble_line(predictions, 2)
    predictions.with_name("logo.json").unlink()  # the run was killed before its summary: it resumes
    run_clip(model, None, ["logo"], tmp_path / "out", **kwargs)
    after = predictions.read_text("utf-8").splitlines(keepends=True)
    assert after[: len(lines)] == lines and len(after) == len(lines) + 1  # only the garbled sample recomputed
    assert json.loads(after[-1])["sample_key"] == garbled_key
    assert f"{predictions}: skipped 1 unreadable line(s) (line 2)" in capsys.readouterr().err


def test_lmms_names_a_store_refusal_without_an_unrelated_hint(tiny_llava, tmp_path):
    """Issue 25, items 2 and 13: through the CLI, changed weights (size and mtime kept) are refused, with the
    store's own message and not the 'dataset could not be loaded' hint."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_llava, model)
    root = tmp_path / "data"
    write_fixture_dataset(root, "logo", 4)
    first = subprocess.run(
        _lmms(root, model, tmp_path / "answers", tmp_path / "a"), env=OFFLINE, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr[-3000:]
    _change_weights_keeping_size_and_mtime(next(model.glob("*.safetensors")))
    second = subprocess.run(
        _lmms(root, model, tmp_path / "answers", tmp_path / "b"), env=OFFLINE, capture_output=True, text=True
    )
    assert second.returncode != 0
    assert "clsbench lmms: error: " in second.stderr and "weights.files_sha256" in second.stderr
    assert "To start fresh: delete" in second.stderr and "dataset could not be loaded" not in second.stderr


def test_the_decision_log_appends_across_runs(tmp_path):
    DecisionLog(tmp_path, "m").write("t", [{"doc_id": 0}])
    DecisionLog(tmp_path, "m").write("t", [{"doc_id": 1}])  # a second run: earlier records stay
    lines = (tmp_path / "m_t.jsonl").read_text().splitlines()
    assert [json.loads(line)["doc_id"] for line in lines] == [0, 1]


# ---------------------------------------------------------------- fingerprints


def test_an_answer_store_under_another_fingerprint_is_refused(tmp_path):
    first = {"model": "m", "weights": {"files_sha256": "aaa"}, "mode": "score"}
    with AnswerStore(tmp_path, "m_score", first) as store:
        store.add([{"key": "k", "reply": "B"}])
    with AnswerStore(tmp_path, "m_score", first) as store:
        assert store.get("k")["reply"] == "B"
    changed = {**first, "weights": {"files_sha256": "bbb"}}
    with pytest.raises(StoreMismatch, match=r"weights.files_sha256: 'aaa' -> 'bbb'[\s\S]*To start fresh: delete"):
        with AnswerStore(tmp_path, "m_score", changed):
            pass


def _change_weights_keeping_size_and_mtime(weights: Path) -> None:
    """One tensor changed in place, with the file's size and times kept (as ``cp -p``, ``rsync -a``, ``touch -r``)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    stat = weights.stat()
    with safe_open(str(weights), "pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(weights))
    name = next(name for name, tensor in tensors.items() if tensor.is_floating_point() and tensor.numel() > 8)
    tensors[name] = tensors[name] + 0.5
    save_file(tensors, str(weights), metadata=metadata)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (weights.stat().st_size, weights.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)


def test_weights_changed_at_the_same_path_with_size_and_mtime_kept_change_the_fingerprint(tiny_llava, tmp_path):
    import shutil

    from clsbench.tasks.runtime.stores import file_sha256

    copy = tmp_path / "model"
    shutil.copytree(tiny_llava, copy)
    before = weights_fingerprint(str(copy))
    assert before["content"] == "sha256"
    weights = next(copy.glob("*.safetensors"))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert weights_fingerprint(str(copy)) == before  # touched, not changed: the same weights
    hashed = file_sha256(weights)
    _change_weights_keeping_size_and_mtime(weights)
    assert file_sha256(weights) != hashed  # the cached hash is not served for the changed file
    assert weights_fingerprint(str(copy))["files_sha256"] != before["files_sha256"]
    assert weights_fingerprint("org/model", "abc") == {"hub": "org/model", "revision": "abc"}


def test_file_hashes_are_cached_across_processes(tmp_path):
    from clsbench.tasks.runtime import stores

    weights = tmp_path / "w.bin"
    weights.write_bytes(b"x" * 1000)
    value = stores.file_sha256(weights)
    cache = json.loads(Path(os.environ["CLSBENCH_HASH_CACHE"]).read_text())
    assert cache[str(weights.resolve())]["sha256"] == value
    stores._HASHES.clear()
    cache[str(weights.resolve())]["sha256"] = "from the cache"
    Path(os.environ["CLSBENCH_HASH_CACHE"]).write_text(json.dumps(cache))
    assert stores.file_sha256(weights) == "from the cache"  # a stat, no read, while the file is unchanged


def test_clsbench_hf_refuses_a_store_made_with_other_weights(tiny_llava, tmp_path):
    """Issue 25, item 2: weights changed with size and mtime kept reused 200/200 old answers."""
    import shutil

    from clsbench.models.lmms.clsbench_hf import ClsbenchHF

    copy = tmp_path / "model"
    shutil.copytree(tiny_llava, copy)
    first = ClsbenchHF(pretrained=str(copy), mode="score", log_dir="none", answer_store=str(tmp_path / "store"))
    with first.answer_store:
        pass
    _change_weights_keeping_size_and_mtime(next(copy.glob("*.safetensors")))
    second = ClsbenchHF(pretrained=str(copy), mode="score", log_dir="none", answer_store=str(tmp_path / "store"))
    with pytest.raises(StoreMismatch, match="weights.files_sha256"):
        second.generate_until([])


def test_the_same_weights_by_a_relative_path_reuse_the_store(tiny_llava, tmp_path, monkeypatch):
    """Issue 25, item 10: the same weights given by a relative path were refused."""
    from clsbench.models.lmms.clsbench_hf import ClsbenchHF

    store = str(tmp_path / "store")
    absolute = ClsbenchHF(pretrained=str(tiny_llava), mode="score", log_dir="none", answer_store=store)
    with absolute.answer_store:
        pass
    monkeypatch.chdir(tiny_llava.parent)
    relative = ClsbenchHF(pretrained=tiny_llava.name, mode="score", log_dir="none", answer_store=store)
    assert relative.answer_store.path == absolute.answer_store.path
    relative.generate_until([])  # not refused


def test_clip_resume_under_another_precision_or_changed_weights_is_refused(fixture_root, tmp_path):
    """Issue 25, item 2: a same-size, same-mtime weight change resumed and served cached text embeddings."""
    from clsbench.clip_baselines.fixtures import build_tiny_clip, tiny_model_name
    from clsbench.clip_baselines.models import resolve_model
    from clsbench.clip_baselines.results import ResultsError
    from clsbench.clip_baselines.run import run_clip

    model = tiny_model_name(build_tiny_clip(tmp_path / "tiny-clip"))
    kwargs = dict(data_dir=fixture_root, cache_dir=tmp_path / "cache", progress=False)
    run_clip(model, None, ["logo"], tmp_path / "out", precision="fp32", **kwargs)
    with pytest.raises(ResultsError, match=r"precision: 'fp32' -> 'bf16'[\s\S]*To start fresh: move"):
        run_clip(model, None, ["logo"], tmp_path / "out", precision="bf16", **kwargs)
    before = resolve_model(model).fingerprint()
    folder = Path(model.removeprefix("local-dir:"))
    _change_weights_keeping_size_and_mtime(next(folder.glob("*.safetensors")))
    with pytest.raises(ResultsError, match="weights.files_sha256"):
        run_clip(model, None, ["logo"], tmp_path / "out", precision="fp32", **kwargs)
    assert resolve_model(model).fingerprint() != before  # the text-embedding cache key moves too


def test_negatives_files_record_what_made_them(fixture_root, tmp_path, tiny_sentence_encoder):
    from clsbench.tasks.data.negatives import negatives_path, text_similar

    text_similar("logo", LOGO, str(tiny_sentence_encoder), tmp_path)
    content = json.loads(negatives_path("logo", "text-similar", tmp_path).read_text())
    assert content["fingerprint"]["encoder"] == str(tiny_sentence_encoder)
    assert "files_sha256" in content["fingerprint"]["weights"]


# ---------------------------------------------------------------- one writer per output


HOLD = (
    "import sys, time\nfrom clsbench.tasks.runtime.stores import OutputLock\n"
    "lock = OutputLock(sys.argv[1]).acquire()\nprint('held', flush=True)\ntime.sleep(60)\n"
)


def _holder(folder: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_writer_fails_at_once_naming_the_holder(tmp_path):
    holder = _holder(tmp_path / "out")
    try:
        began = time.time()
        with pytest.raises(OutputLocked, match=rf"being written by another clsbench run \(pid {holder.pid} on "):
            OutputLock(tmp_path / "out").acquire()
        assert time.time() - began < 5
    finally:
        holder.kill()
        holder.wait()
    with OutputLock(tmp_path / "out"):  # a killed holder's lock is gone with it
        pass


def test_two_clip_runs_into_one_folder_do_not_mix(fixture_root, tmp_path):
    from clsbench.clip_baselines.fixtures import build_tiny_clip, tiny_model_name
    from clsbench.clip_baselines.results import ResultsError
    from clsbench.clip_baselines.run import run_clip

    model = tiny_model_name(build_tiny_clip(tmp_path / "tiny-clip"))
    run_clip(model, None, ["logo"], tmp_path / "out", data_dir=fixture_root, cache_dir=tmp_path / "c", progress=False)
    (run_dir,) = [path for path in (tmp_path / "out").iterdir() if path.is_dir()]
    holder = _holder(run_dir)
    try:
        with pytest.raises(ResultsError, match="being written by another clsbench run"):
            run_clip(
                model, None, ["logo"], tmp_path / "out", data_dir=fixture_root, cache_dir=tmp_path / "c", progress=False
            )
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------- one image decoder


def _jpeg(size=(40, 20), orientation: int | None = None) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    image.paste((30, 200, 30), (0, 0, size[0] // 2, size[1]))
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def _png16(value: int) -> bytes:
    import numpy as np

    image = Image.fromarray(np.full((16, 16), value, dtype=np.uint16))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_decoder_applies_exif_scales_16_bit_and_refuses_truncated_and_bombs(monkeypatch):
    assert decode_image(_jpeg()).size == (40, 20)
    assert decode_image(_jpeg(orientation=6)).size == (20, 40)  # rotated as a viewer shows it
    grey = decode_image(_png16(32896))  # 16-bit mid grey
    assert grey.mode == "RGB" and grey.getpixel((3, 3)) == (128, 128, 128)
    truncated = _jpeg((400, 300))[:1500]
    ImageFile.LOAD_TRUNCATED_IMAGES = True  # as lmms-eval leaves it for the whole process
    try:
        with pytest.raises(ImageDecodeError, match="truncated"):
            decode_image(truncated)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageDecodeError, match="decompression-bomb limit"):
        decode_image(synthetic_image("logo", 0, 0, size=48))


def test_prepare_decodes_every_image(tmp_path):
    truncated = _jpeg((400, 300))[:1500]
    Image.open(io.BytesIO(truncated)).verify()  # the header check 0.1 relied on passes it
    records = [("a.jpg", _jpeg(), 0), ("bad.jpg", truncated, 1)]
    with pytest.raises(DataError, match="logo sample bad.jpg: corrupt or unreadable image"):
        write_prepared(tmp_path / "logo", "logo", records, LOGO, {})


def _write_copy(root: Path, key: str, images: list[bytes], labels: list[int], names=None, *, label_type=None) -> Path:
    """A prepared copy written directly (not through prepare's checks), as a damaged or hand-made copy would be."""
    names = list(names if names is not None else DATASETS[key].classnames)
    label = label_type or datasets.ClassLabel(names=names)
    features = datasets.Features({"image": datasets.Image(), "label": label, "source_id": datasets.Value("string")})
    folder = root / key
    (folder / "data").mkdir(parents=True, exist_ok=True)
    rows = {
        "image": [{"bytes": data, "path": f"{i}.jpg"} for i, data in enumerate(images)],
        "label": labels,
        "source_id": [f"{i}.jpg" for i in range(len(images))],
    }
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(folder / "data" / "test-00000-of-00001.parquet"))
    meta = {
        "dataset": key,
        "schema_version": 1,
        "rows": len(images),
        "classnames": names,
        "skipped": [],
        "provenance": {},
    }
    (folder / META_FILE).write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize("kind", ["truncated", "bomb"])
def test_a_bad_image_fails_the_same_way_in_lmms_clip_and_export(tmp_path, monkeypatch, kind):
    from clsbench.clip_baselines.zeroshot import ImageRows
    from clsbench.tasks.cls_mcq import utils
    from clsbench.tasks.toolkits.vlmeval.export import write_tsv

    bad = _jpeg((400, 300))[:1500] if kind == "truncated" else _jpeg((40, 20))
    _write_copy(tmp_path, "logo", [_jpeg((10, 10)), bad], [0, 1])
    if kind == "bomb":
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # 40 x 20 = 800 pixels > 2 x 300: PIL's bomb error
    rows = load_rows("logo", tmp_path)
    docs = add_questions(rows, "logo")
    ImageFile.LOAD_TRUNCATED_IMAGES = True  # lmms-eval's setting must not change the outcome
    try:
        messages = []
        utils.cls_doc_to_visual(docs[0])  # the good one decodes
        for attempt in (
            lambda: utils.cls_doc_to_visual(docs[1]),
            lambda: ImageRows(rows, "logo", [(1, True)], transform=lambda image: image)[0],
            lambda: write_tsv("logo", tmp_path / "tsv", tmp_path),
        ):
            with pytest.raises(SampleError) as error:
                attempt()
            messages.append(str(error.value))
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    assert len(set(messages)) == 1 and messages[0].startswith("logo sample 1 (1.jpg): cannot read the image")


def test_a_decompression_bomb_through_clsbench_hf_is_named_like_other_bad_images(tiny_llava, tmp_path):
    """Issue 25, item 7: the early image-size step let PIL's DecompressionBombError (not an OSError) through."""
    bomb = io.BytesIO()
    Image.new("1", (20000, 10000)).save(bomb, format="PNG")  # 2e8 pixels: over twice PIL's limit, a few kB
    _write_copy(tmp_path / "data", "logo", [_jpeg((10, 10)), bomb.getvalue()], [0, 1])
    run = subprocess.run(
        _lmms(tmp_path / "data", tiny_llava, "none", tmp_path / "out"),
        env=OFFLINE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode != 0
    assert "clsbench lmms: error: logo sample 1 (1.jpg): cannot read the image" in run.stderr, run.stderr[-3000:]
    assert "decompression-bomb limit" in run.stderr


@pytest.mark.parametrize("kind", ["exif", "16-bit"])
def test_tricky_images_give_the_same_pixels_in_lmms_clip_and_export(tmp_path, kind):
    import base64

    import numpy as np
    import pandas as pd

    from clsbench.clip_baselines.zeroshot import ImageRows
    from clsbench.tasks.cls_mcq import utils
    from clsbench.tasks.data.samples import open_image
    from clsbench.tasks.toolkits.vlmeval.export import write_tsv

    tricky = _jpeg(orientation=6) if kind == "exif" else _png16(32896)
    _write_copy(tmp_path, "logo", [tricky], [0])
    rows = load_rows("logo", tmp_path)
    lmms = utils.cls_doc_to_visual(add_questions(rows, "logo")[0])[0]
    clip = ImageRows(rows, "logo", [(0, True)], transform=lambda image: image)[0][0]
    tsv = pd.read_csv(write_tsv("logo", tmp_path / "tsv", tmp_path), sep="\t")
    exported = open_image({"bytes": base64.b64decode(tsv["image"][0])}, dataset="logo", sample_key="0")
    assert np.array_equal(np.asarray(lmms), np.asarray(clip)) and np.array_equal(np.asarray(lmms), np.asarray(exported))
    assert lmms.size == ((20, 40) if kind == "exif" else (16, 16))


WRITER = """
import sys
from pathlib import Path
from clsbench.tasks.cls_mcq.task_folder import task_folder_for
root = Path(sys.argv[1])
for turn in range(30):
    on, off = root / "food101", root / "food101.off"
    (on if turn % 2 else off).rename(off if turn % 2 else on)  # the prepared copies change between starts
    task_folder_for(root)
"""


def test_the_data_roots_task_folder_is_swapped_in_atomically(tmp_path):
    """Issue 25, item 8: concurrent readers saw 0-byte YAML and utils.py files while lmms re-copied the folder."""
    from clsbench.tasks.cls_mcq.task_folder import task_folder_for

    root = tmp_path / "data"
    write_fixture_dataset(root, "logo", 2)
    write_fixture_dataset(root, "food101", 2)
    folder = task_folder_for(root)
    assert folder == root / "_lmms_tasks" and (folder / "utils.py").stat().st_size > 0
    (root / "food101").rename(root / "food101.off")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], env=OFFLINE)
    reads, empty = 0, []
    while writer.poll() is None or reads == 0:
        for directory, _, names in os.walk(folder):
            for name in names:
                try:
                    size = len(Path(directory, name).read_bytes())
                except FileNotFoundError:  # listed in one version, gone in the next: never half-written
                    continue
                reads += 1
                if size == 0:
                    empty.append(name)
    assert writer.wait() == 0 and reads > 100
    assert not empty, f"{len(empty)} of {reads} reads saw an empty file: {sorted(set(empty))[:5]}"
    source = (folder / "_food101_source_yaml").read_text()
    assert "hf://datasets/" in source and str(root) not in source  # the last start's (food101 off), complete
    versions = [path for path in root.glob("_lmms_tasks.*") if path.is_dir()]
    assert (root / "_lmms_tasks").resolve() in versions


# ---------------------------------------------------------------- malformed prepared copies


def _good(tmp_path: Path, key: str = "logo") -> Path:
    return _write_copy(tmp_path, key, [_jpeg(), _jpeg()], [0, 1], names=LOGO if key == "logo" else None)


@pytest.mark.parametrize(
    "damage,message",
    [
        ("empty parquet", "has no rows"),
        ("json without parquet", "matches no file"),
        ("truncated json", "is not readable JSON"),
        ("json without fields", "lacks dataset, schema_version, rows or classnames"),
        ("missing label column", r"lacks column\(s\) \['label'\]"),
        ("string labels", "stores labels as string, not integers"),
        ("nine names", "has 9 classes, the registry 10"),
        ("json and parquet disagree", "disagree on the class list"),
        ("row count", "hold 2 rows, clsbench.json says 5"),
    ],
)
def test_malformed_copies_fail_naming_dataset_file_and_cause(tmp_path, damage, message):
    from clsbench.tasks.cls_mcq.task_folder import task_folder_for

    folder = _good(tmp_path)
    meta_path, shard = folder / META_FILE, folder / "data" / "test-00000-of-00001.parquet"
    meta = json.loads(meta_path.read_text())
    if damage == "empty parquet":
        _write_copy(tmp_path, "logo", [], [], names=LOGO)
    elif damage == "json without parquet":
        shard.unlink()
    elif damage == "truncated json":
        meta_path.write_text(meta_path.read_text()[:40])
    elif damage == "json without fields":
        meta_path.write_text(json.dumps({"dataset": "logo"}))
    elif damage == "missing label column":
        datasets.Dataset.from_parquet(str(shard)).remove_columns("label").to_parquet(str(shard))
    elif damage == "string labels":
        _write_copy(tmp_path, "logo", [_jpeg(), _jpeg()], ["0", "1"], label_type=datasets.Value("string"))
    elif damage == "nine names":
        _write_copy(tmp_path, "logo", [_jpeg(), _jpeg()], [0, 1], names=LOGO[:9])
    elif damage == "json and parquet disagree":
        meta_path.write_text(json.dumps({**meta, "classnames": LOGO[::-1]}))
    elif damage == "row count":
        meta_path.write_text(json.dumps({**meta, "rows": 5}))
    # Every consumer finds copies the same way: the CLIP baselines / export (load_rows) and lmms-eval (task folder).
    for consumer in (lambda: load_rows("logo", tmp_path), lambda: task_folder_for(tmp_path)):
        with pytest.raises(DataError, match=message) as error:
            consumer()
        assert "logo" in str(error.value) and str(tmp_path) in str(error.value)


def test_gldv2_names_agree_between_the_copy_and_its_parquet(tmp_path):
    names = ["Big Ben", "Petra"]
    folder = _write_copy(tmp_path, "gldv2", [_jpeg(), _jpeg()], [0, 1], names=names)
    meta = json.loads((folder / META_FILE).read_text())
    (folder / META_FILE).write_text(json.dumps({**meta, "classnames": ["Petra", "Big Ben"]}))
    with pytest.raises(DataError, match="gldv2: .* disagree on the class list .* first difference at label 0"):
        load_rows("gldv2", tmp_path)


# ---------------------------------------------------------------- report inputs, seeds and keys


def test_report_names_and_skips_malformed_results(tmp_path):
    from clsbench.tasks.report.build import write_report

    good = tmp_path / "runs" / "org__m"
    good.mkdir(parents=True)
    (good / "20260101_000000_results.json").write_text(
        json.dumps(
            {
                "results": {"cls_logo_mcq": {"accuracy,none": 0.5}},
                "config": {"model": "dummy", "model_args": "pretrained=a"},
            }
        )
    )
    (good / "20260102_000000_results.json").write_text('{"results": {"cls_logo_mcq": {"accura')  # killed mid-write
    (good / "20260103_000000_results.json").write_text(json.dumps({"results": ["not", "an", "object"]}))
    notes = []
    write_report([tmp_path / "runs"], tmp_path / "out", figures=False, echo=notes.append)
    text = "\n".join(notes)
    assert "20260102_000000_results.json: skipped, not readable JSON" in text
    assert "20260103_000000_results.json: skipped, not an lmms-eval results file of the expected shape" in text
    assert "| dummy (a) |" in text


def test_report_skips_bad_files_naming_them_and_counts_each_sample_once(tmp_path):
    """Issue 25, item 6: the report aborted on a bad file and counted duplicated sample lines three times."""
    import csv

    from clsbench.tasks.report.build import write_report

    def lmms(folder: Path, stamp: str, accuracy: float, samples: int = 0) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        results = {
            "results": {"cls_logo_mcq": {"accuracy,none": accuracy}},
            "config": {"model": "dummy", "model_args": f"pretrained={folder.name}"},
        }
        (folder / f"{stamp}_results.json").write_text(json.dumps(results))
        decisions = [{"doc_id": i, "decision": {"label": i % 10, "correct": i % 2 == 0}} for i in range(samples)]
        lines = [json.dumps(entry) for entry in decisions]
        if lines:  # each sample logged three times, as appended reruns leave them
            (folder / f"{stamp}_samples_cls_logo_mcq.jsonl").write_text("\n".join(lines * 3) + "\n")

    runs = tmp_path / "runs"
    lmms(runs / "good", "20260101_000000", 0.5, samples=8)
    lmms(runs / "wild", "20260102_000000", 1.7)
    clip = runs / "clip" / "ViT-B-32__openai"
    clip.mkdir(parents=True)
    rows = [{"sample_key": "0", "label": 1, "correct": True}, {"sample_key": "1", "prediction": 2, "correct": False}]
    (clip / "logo.predictions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    summary = {"format": "clsbench-clip-v1", "model": "ViT-B-32", "pretrained": "openai", "dataset": "logo"}
    (clip / "logo.json").write_text(json.dumps({**summary, "accuracy": 0.5, "n_samples": 2}))
    vlmeval = runs / "vlmeval" / "M" / "T20260101_000000"
    vlmeval.mkdir(parents=True)
    (vlmeval / "M_ClsBench_logo_acc.csv").write_bytes("split,Overall\nnone,0.5\n\xff\xfe caf\xe9".encode("latin-1"))
    (vlmeval / "M_ClsBench_logo.xlsx").write_bytes(b"PK\x03\x04 truncated")
    notes: list[str] = []
    write_report([runs], tmp_path / "out", figures=False, echo=notes.append)
    text = "\n".join(notes)
    assert "20260102_000000_results.json: skipped" in text and "accuracy 1.7 is outside 0..1" in text
    assert "logo.predictions.jsonl: 1 line(s) without a label or correct, skipped" in text
    assert "M_ClsBench_logo.xlsx: skipped, not a readable VLMEvalKit predictions file" in text
    assert "M_ClsBench_logo_acc.csv: skipped, not a readable acc.csv (UnicodeDecodeError" in text
    with open(tmp_path / "out" / "per_class.csv", newline="") as handle:
        counts = [int(row["n"]) for row in csv.DictReader(handle) if row["model"].startswith("dummy (good)")]
    assert sum(counts) == 8  # 8 questions, each logged three times, counted once


def test_negative_seeds_and_sample_keys_are_refused(tmp_path):
    with pytest.raises(ValueError, match="seed must be 0 or more"):
        build_question("logo", "0", 0, LOGO, seed=-1)
    with pytest.raises(ValueError, match="row indices are 0 or more"):
        build_question("logo", "-3", 0, LOGO)
    run = subprocess.run(
        [*CLSBENCH, "options", "--datasets", "logo", "--index=-1", "--label", "0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and "index must be a row of the split" in run.stderr


# ---------------------------------------------------------------- security


def test_a_crafted_table_index_never_writes_outside_the_images_folder(tmp_path):
    """Issue 25, item 12: an index ``../../../pwn`` in a VLMEvalKit table wrote its image outside the images folder."""
    import base64

    from clsbench.tasks.toolkits.vlmeval.export import localize_tsv
    from clsbench.tasks.toolkits.vlmeval.names import images_folder

    lmu = tmp_path / "lmu" / "deep" / "er"
    lmu.mkdir(parents=True)
    image = base64.b64encode(_jpeg((8, 8))).decode("ascii")
    tsv = lmu / "ClsBench_logo.tsv"
    tsv.write_text(f"index\tquestion\tA\tanswer\timage\n0\tq\ta\tA\t{image}\n../../../pwn\tq\ta\tA\t{image}\n")
    folder = images_folder(lmu, "ClsBench_logo")
    with pytest.raises(ValueError, match=r"ClsBench_logo.tsv line 3: index '../../../pwn' is not a plain file name"):
        localize_tsv(tsv, folder)
    assert not list(tmp_path.rglob("pwn*"))
    with pytest.raises(ValueError, match="not a plain file name"):
        localize_tsv(_with_index(tsv, "/tmp/abs"), folder)


def _with_index(tsv: Path, index: str) -> Path:
    lines = tsv.read_text().splitlines(keepends=True)
    lines[2] = index + lines[2][lines[2].index("\t") :]
    tsv.write_text("".join(lines))
    return tsv


def test_minicpm_refuses_a_hub_checkpoint_without_a_pinned_commit(tmp_path):
    """Issue 25, item 12: clsbench_minicpm forced trust_remote_code=True on whatever the Hub branch held."""
    from clsbench.models.lmms.minicpm import ClsbenchMiniCPM, check_remote_code_revision

    for revision in (None, "main", "v2.6"):
        with pytest.raises(ValueError, match=r"trust_remote_code=True\), so pin the commit .* revision=<40-hex"):
            ClsbenchMiniCPM(pretrained="openbmb/MiniCPM-V-2_6", revision=revision)
    check_remote_code_revision("openbmb/MiniCPM-V-2_6", "0" * 40)  # a commit: accepted (then loaded from the Hub)
    check_remote_code_revision(str(tmp_path), None)  # a local folder runs the code in it


def _cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("CMYK", (12, 10), (10, 200, 40, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _palette_png() -> bytes:
    image = Image.new("RGB", (12, 10), (250, 10, 10))
    image.paste((10, 10, 250), (0, 0, 6, 10))
    buffer = io.BytesIO()
    image.convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(buffer, format="PNG", transparency=0)
    return buffer.getvalue()


@pytest.mark.parametrize("images", ["files", "inline"])
def test_vlmeval_export_gives_every_model_the_decoded_pixels(tmp_path, images):
    """Issue 25, item 9: VLMEvalKit's own models opened the exported bytes with a plain convert("RGB"): a 16-bit
    PNG came out white and an EXIF-rotated photo sideways. Such images are exported as decoded pixels (PNG)."""
    import base64
    import csv

    import numpy as np

    from clsbench.tasks.toolkits.vlmeval.export import read_sidecar, write_tsv
    from clsbench.tasks.toolkits.vlmeval.names import images_folder

    files = [_jpeg((10, 10)), _png16(32896), _jpeg(orientation=6), _cmyk_jpeg(), _palette_png()]
    _write_copy(tmp_path, "logo", files, [0, 1, 2, 3, 4])
    tsv = write_tsv("logo", tmp_path / "lmu", tmp_path, images=images)
    csv.field_size_limit(1 << 30)
    with tsv.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    for row, original in zip(rows, files):
        if images == "files":
            exported = (images_folder(tmp_path / "lmu", "ClsBench_logo") / row["image_path"]).read_bytes()
        else:
            exported = base64.b64decode(row["image"])
        with Image.open(io.BytesIO(exported)) as plain:  # what a VLMEvalKit model does with the file
            seen = np.asarray(plain.convert("RGB"))
        assert np.array_equal(seen, np.asarray(decode_image(original))), row["sample_key"]
    folder = images_folder(tmp_path / "lmu", "ClsBench_logo")
    first = (folder / rows[0]["image_path"]).read_bytes() if images == "files" else base64.b64decode(rows[0]["image"])
    assert first == files[0]  # an image the decoder leaves alone keeps its original bytes
    decoded = read_sidecar(tsv)["decoded_images"]
    assert decoded == {
        "format": "PNG",
        "count": 4,
        "samples": {"1": "16-bit", "2": "EXIF orientation 6", "3": "CMYK", "4": "palette"},
    }


def test_with_several_bad_images_lmms_clip_and_export_name_the_same_first_one(tiny_llava, tmp_path):
    """Issue 25, item 13: lmms (longest-first batches) named another first bad sample than clip and export."""
    from clsbench.clip_baselines.zeroshot import ImageRows
    from clsbench.tasks.toolkits.vlmeval.export import write_tsv

    truncated = [_jpeg((400 + 40 * i, 300))[:1500] for i in range(3)]
    images = [_jpeg((10, 10))] * 8
    for position, data in zip((2, 5, 6), truncated):
        images[position] = data
    root = tmp_path / "data"
    _write_copy(root, "logo", images, list(range(8)))
    messages = []
    rows = load_rows("logo", root)
    for attempt in (
        lambda: [ImageRows(rows, "logo", [(i, True)], transform=lambda image: image)[0] for i in range(8)],
        lambda: write_tsv("logo", tmp_path / "tsv", root),
    ):
        with pytest.raises(SampleError) as error:
            attempt()
        messages.append(str(error.value).split(": cannot read")[0])
    command = _lmms(root, tiny_llava, "none", tmp_path / "out")
    command[command.index("--batch_size") + 1] = "4"
    run = subprocess.run(command, env=OFFLINE, capture_output=True, text=True, timeout=600)
    assert run.returncode != 0
    assert messages == ["logo sample 2 (2.jpg)"] * 2
    assert "clsbench lmms: error: logo sample 2 (2.jpg): cannot read the image" in run.stderr, run.stderr[-3000:]


# ---------------------------------------------------------------- full disks, read-only outputs, early locks

UNWRITABLE = '''
import builtins, errno, io, os

_FOLDER = os.environ.get("CLSBENCH_TEST_READ_ONLY")
_FULL = os.environ.get("CLSBENCH_TEST_FULL_DISK")


def _under(path, folder):
    try:
        return os.path.abspath(os.fspath(path)).startswith(folder)
    except TypeError:
        return False


def make_unwritable(folder, patch):
    """Writes under ``folder`` fail as on a read-only filesystem (EROFS); reads work."""
    folder = os.path.abspath(folder)
    real_mkdir, real_open, real_os_open = os.mkdir, builtins.open, os.open

    def refuse(path):
        raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))

    def mkdir(path, *args, **kwargs):
        if _under(path, folder):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if _under(path, folder) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        if _under(file, folder) and any(flag in mode for flag in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    patch(os, "mkdir", mkdir)
    patch(os, "open", os_open)
    patch(builtins, "open", open_)
    patch(io, "open", open_)


def fill_the_disk(patch):
    """Every fsync fails as on a full disk (ENOSPC)."""

    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    patch(os, "fsync", fsync)


if _FOLDER:
    make_unwritable(_FOLDER, setattr)
if _FULL:
    fill_the_disk(setattr)
'''


def _unwritable_env(tmp_path: Path, **variables: str) -> dict:
    """The environment of a subprocess whose writes fail as set (``sitecustomize`` runs before anything else)."""
    hooks = tmp_path / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(UNWRITABLE)
    path = os.pathsep.join(filter(None, [str(hooks), OFFLINE.get("PYTHONPATH")]))
    return {**OFFLINE, "PYTHONPATH": path, **variables}


def _hooks(tmp_path: Path):
    _unwritable_env(tmp_path)
    sys.path.insert(0, str(tmp_path / "hooks"))
    try:
        import importlib

        import sitecustomize

        return importlib.reload(sitecustomize)
    finally:
        sys.path.remove(str(tmp_path / "hooks"))


@pytest.mark.parametrize("failure", ["full disk", "read-only"])
def test_clip_names_the_path_and_cause_when_it_cannot_write(fixture_root, tmp_path, monkeypatch, capsys, failure):
    """Issue 25, item 11: a full disk or a read-only output folder gave `clsbench clip` a raw traceback."""
    from clsbench.clip_baselines.fixtures import build_tiny_clip, tiny_model_name
    from clsbench.tasks.cli.main import main

    model = tiny_model_name(build_tiny_clip(tmp_path / "tiny-clip"))
    out = tmp_path / "out"
    hooks = _hooks(tmp_path)
    if failure == "full disk":
        hooks.fill_the_disk(monkeypatch.setattr)
    else:
        hooks.make_unwritable(str(out), monkeypatch.setattr)
    command = ["clip", "--model", model, "--datasets", "logo", "--output-dir", str(out), "--data-dir"]
    code = main([*command, str(fixture_root), "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    error = capsys.readouterr().err
    assert code == 2, error
    assert "clsbench clip: error: cannot write " in error and str(out) in error and "Traceback" not in error
    if failure == "full disk":
        assert "logo.predictions.jsonl: No space left on device [ENOSPC]; the disk" in error
    else:
        assert "Read-only file system [EROFS]; the folder is read-only" in error


def _run(command, env=OFFLINE):
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_lmms_reuses_a_finished_store_on_a_read_only_filesystem_and_names_it_when_it_cannot_write(tiny_llava, tmp_path):
    """Issue 25, items 10 and 11: a finished store on a read-only filesystem could not be reused; a store that
    cannot be written (read-only, full disk) was not named."""
    root, store = tmp_path / "data", tmp_path / "answers"
    write_fixture_dataset(root, "logo", 6)
    first = _run(_lmms(root, tiny_llava, store, tmp_path / "first"))
    assert first.returncode == 0, first.stderr[-3000:]
    read_only = _unwritable_env(tmp_path, CLSBENCH_TEST_READ_ONLY=str(store))
    reused = _run(_lmms(root, tiny_llava, store, tmp_path / "reused"), read_only)
    assert reused.returncode == 0, reused.stderr[-3000:]
    assert "6 of 6 replies reused" in reused.stderr and "(read-only: read without a lock)" in reused.stderr
    assert _replies(tmp_path / "reused") == _replies(tmp_path / "first")

    empty = tmp_path / "empty"
    empty.mkdir()
    refused = _run(
        _lmms(root, tiny_llava, empty, tmp_path / "refused"),
        _unwritable_env(tmp_path, CLSBENCH_TEST_READ_ONLY=str(empty)),
    )
    assert refused.returncode != 0
    assert f"clsbench lmms: error: the answer store {empty} cannot be written and 6 repl" in refused.stderr
    assert "Read-only file system [EROFS]" in refused.stderr

    full = _run(
        _lmms(root, tiny_llava, tmp_path / "full", tmp_path / "o"),
        _unwritable_env(tmp_path, CLSBENCH_TEST_FULL_DISK="1"),
    )
    assert full.returncode != 0
    assert f"clsbench lmms: error: cannot write answers to the answer store to {tmp_path / 'full'}" in full.stderr
    assert "No space left on device [ENOSPC]" in full.stderr


HOLD_STORE = """
import sys
from clsbench.models.lmms.clsbench_hf import ClsbenchHF
sys.argv = ["lmms_eval", "--tasks", "cls_logo_mcq"]
model = ClsbenchHF(pretrained=sys.argv_model, mode="generate", log_dir="none", answer_store=sys.argv_store)
print("held", flush=True)
import time; time.sleep(120)
"""


def test_lmms_takes_the_store_lock_before_loading_per_task(tiny_llava, tmp_path, monkeypatch):
    """Issue 25, item 10: a second run was refused only after loading the model, and even for another task."""
    from clsbench.models.engine import answering
    from clsbench.models.lmms import clsbench_hf
    from clsbench.tasks.runtime.stores import OutputLocked

    root, store = tmp_path / "data", tmp_path / "answers"
    write_fixture_dataset(root, "logo", 4)
    write_fixture_dataset(root, "food101", 4)
    script = HOLD_STORE.replace("sys.argv_model", repr(str(tiny_llava))).replace("sys.argv_store", repr(str(store)))
    holder = subprocess.Popen([sys.executable, "-c", script], env=OFFLINE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"

        def never(*args, **kwargs):
            raise AssertionError("the model was loaded before the lock was taken")

        monkeypatch.setattr(answering, "HFVisionLanguageModel", never)  # what build_answerer loads
        monkeypatch.setattr(sys, "argv", ["lmms_eval", "--tasks", "cls_logo_mcq"])
        with pytest.raises(OutputLocked, match=rf"another clsbench run \(pid {holder.pid} "):
            clsbench_hf.ClsbenchHF(pretrained=str(tiny_llava), log_dir="none", answer_store=str(store))

        same = _run(_lmms(root, tiny_llava, store, tmp_path / "same"))
        assert same.returncode != 0 and f"being written by another clsbench run (pid {holder.pid} " in same.stderr
        other = _lmms(root, tiny_llava, store, tmp_path / "other")
        other[other.index("--tasks") + 1] = "cls_food101_mcq"
        done = _run(other)
        assert done.returncode == 0, done.stderr[-3000:]  # another task with the same model is not refused
    finally:
        holder.kill()
        holder.wait()
