"""``clsbench_hf`` on tiny real architectures (LLaVA-1.5, LLaVA-NeXT, LLaVA-OneVision, Qwen2-VL, Qwen2.5-VL, Qwen3-VL,
Idefics3, Gemma 3): score vs greedy,
batch invariance, loglik, lmms-eval.

The tiny models have random weights; ``build_letter_prone`` scales their letter rows so the first
greedy token is usually a capital letter whose identity still depends on the prompt, which makes
score-vs-greedy and batch-size comparisons compare real, varying decisions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from clsbench.models.engine.answering import Answerer, Query
from clsbench.models.engine.hf_vlm import HFVisionLanguageModel, VisualPrompt
from clsbench.models.engine.scoring import rank_options
from clsbench.models.fixtures import (
    build_letter_prone,
    build_tiny_gemma3,
    build_tiny_idefics3,
    build_tiny_llava_next,
    build_tiny_llava_onevision,
    build_tiny_qwen2_5_vl,
    build_tiny_qwen2_vl,
    build_tiny_qwen3_vl,
)
from clsbench.tasks.cls_mcq.task_folder import task_folder_for
from clsbench.tasks.data.loading import load_rows
from clsbench.tasks.data.samples import add_questions, open_image
from clsbench.tasks.protocol.draws import LETTERS
from clsbench.tasks.protocol.questions import format_prompt

CLSBENCH = [sys.executable, "-m", "clsbench.tasks.cli"]
ARCH_FIXTURES = {  # architecture -> the session fixture that builds its tiny checkpoint
    "llava": "tiny_llava",
    "qwen2_vl": "tiny_qwen",
    "qwen2_5_vl": "tiny_qwen25",
    "llava_onevision": "tiny_onevision",
    "llava_next": "tiny_llava_next",
    "qwen3_vl": "tiny_qwen3",
    "idefics3": "tiny_idefics3",
    "gemma3": "tiny_gemma3",
}


@pytest.fixture(scope="session")
def models_root(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "clsbench-models"


@pytest.fixture(scope="session")
def tiny_qwen(models_root) -> Path:
    return build_tiny_qwen2_vl(models_root / "tiny-qwen2-vl")


@pytest.fixture(scope="session")
def tiny_qwen25(models_root) -> Path:
    return build_tiny_qwen2_5_vl(models_root / "tiny-qwen2.5-vl", seed=2)  # seed 0 answers "O" to everything


@pytest.fixture(scope="session")
def tiny_onevision(models_root) -> Path:
    return build_tiny_llava_onevision(models_root / "tiny-llava-onevision")


@pytest.fixture(scope="session")
def tiny_llava_next(models_root) -> Path:
    return build_tiny_llava_next(models_root / "tiny-llava-next")


@pytest.fixture(scope="session")
def tiny_qwen3(models_root) -> Path:
    return build_tiny_qwen3_vl(models_root / "tiny-qwen3-vl", seed=1)  # seeds 0, 2-4 answer (almost) one letter


@pytest.fixture(scope="session")
def tiny_idefics3(models_root) -> Path:
    return build_tiny_idefics3(models_root / "tiny-idefics3", seed=3)  # seeds 0-2, 4 answer (almost) one letter


@pytest.fixture(scope="session")
def tiny_gemma3(models_root) -> Path:
    return build_tiny_gemma3(models_root / "tiny-gemma3")


@pytest.fixture(scope="session")
def letter_llava(tiny_llava, models_root) -> Path:
    return build_letter_prone(tiny_llava, models_root / "llava-letters")


@pytest.fixture(scope="session")
def letter_qwen(tiny_qwen, models_root) -> Path:
    return build_letter_prone(tiny_qwen, models_root / "qwen-letters")


@pytest.fixture(scope="module")
def engines(letter_llava, letter_qwen, tiny_qwen25, tiny_onevision, models_root) -> dict[str, HFVisionLanguageModel]:
    letter_qwen25 = build_letter_prone(tiny_qwen25, models_root / "qwen2.5-letters")
    letter_onevision = build_letter_prone(tiny_onevision, models_root / "onevision-letters")
    return {
        name: HFVisionLanguageModel(str(path))
        for name, path in (
            ("llava", letter_llava),
            ("qwen2_vl", letter_qwen),
            ("qwen2_5_vl", letter_qwen25),
            ("llava_onevision", letter_onevision),
        )
    }


@pytest.fixture(scope="module")
def more_engines(
    tiny_llava_next, tiny_qwen3, tiny_idefics3, tiny_gemma3, models_root
) -> dict[str, HFVisionLanguageModel]:
    """Letter-prone LLaVA-NeXT, Qwen3-VL, Idefics3 and Gemma 3 (kept apart so the older tests do not build them)."""
    sources = {"llava_next": tiny_llava_next, "qwen3_vl": tiny_qwen3, "idefics3": tiny_idefics3, "gemma3": tiny_gemma3}
    return {
        name: HFVisionLanguageModel(str(build_letter_prone(path, models_root / f"{name}-letters")))
        for name, path in sources.items()
    }


NEW_ARCHS = ["llava_next", "qwen3_vl", "idefics3", "gemma3"]


@pytest.fixture(scope="module")
def task_manager(fixture_root):
    from lmms_eval.tasks import TaskManager

    return TaskManager("ERROR", include_path=str(task_folder_for(fixture_root)))


def fixture_queries(root: Path, keys: list[str]) -> list[Query]:
    queries = []
    for key in keys:
        for doc in add_questions(load_rows(key, root), key):
            image = open_image(doc["image"], dataset=key, sample_key=doc["sample_key"])
            queries.append(
                Query(
                    images=(image,),
                    prompt=format_prompt(doc["question"], doc["options"]),
                    options=tuple(doc["options"]),
                    question=doc["question"],
                    meta={"dataset": key, "sample_key": doc["sample_key"], "answer": doc["answer"]},
                )
            )
    return queries


def prompts_of(queries: list[Query]) -> list[VisualPrompt]:
    return [VisualPrompt(query.images, query.prompt) for query in queries]


@pytest.mark.parametrize("arch", ["llava", "qwen2_vl", "qwen2_5_vl", "llava_onevision", *NEW_ARCHS])
def test_score_picks_the_greedy_first_token_whenever_it_is_an_option_letter(request, fixture_root, arch):
    engine = request.getfixturevalue("more_engines" if arch in NEW_ARCHS else "engines")[arch]
    queries = fixture_queries(fixture_root, ["food101", "cub200", "imagenet", "logo"])
    scored = []
    for start in range(0, len(queries), 8):  # batched, left-padded
        scored += Answerer(engine, "score").answer(queries[start : start + 8])
    compared = []
    for query, reply in zip(queries, scored):
        # greedy generation, one unpadded prompt at a time, straight through transformers
        inputs = engine.encode([VisualPrompt(query.images, query.prompt)])
        with torch.inference_mode():
            token = engine.model.generate(**inputs, max_new_tokens=1, do_sample=False)[0, -1]
        first = engine.tokenizer.decode([int(token)])
        if first in LETTERS[: len(query.options)]:
            compared.append((first, reply.text))
        assert reply.text in LETTERS[: len(query.options)]
        assert sum(reply.record["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    assert len(compared) >= 8, f"too few letter-first greedy replies to compare: {compared}"
    assert len({greedy for greedy, _ in compared}) >= 2, "every compared sample chose the same letter"
    assert [scored for _, scored in compared] == [greedy for greedy, _ in compared]


def test_qwen_letters_do_not_depend_on_batch_size_or_order(engines, fixture_root):
    engine = engines["qwen2_vl"]
    queries = fixture_queries(fixture_root, ["food101", "logo", "stanfordcars"])
    answerer = Answerer(engine, "score")
    one_by_one = [answerer.answer([query])[0] for query in queries]
    reverse = list(reversed(queries))
    batched = [reply for start in range(0, len(reverse), 8) for reply in answerer.answer(reverse[start : start + 8])][
        ::-1
    ]
    assert [r.text for r in one_by_one] == [r.text for r in batched]
    assert len({r.text for r in one_by_one}) >= 2
    for a, b in zip(one_by_one, batched):
        assert a.record["probs"] == pytest.approx(b.record["probs"], abs=1e-4)


def _run_in_lmms(model, task_manager, tasks, batch_size):
    from lmms_eval.evaluator import simple_evaluate

    return simple_evaluate(model=model, tasks=tasks, task_manager=task_manager, batch_size=batch_size, log_samples=True)


def _decisions(folder: Path) -> dict[tuple[str, int], dict]:
    records = {}
    for path in folder.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            records[(record["task"], record["doc_id"])] = record
    return records


def test_lmms_eval_batch_1_and_batch_8_give_the_same_letters(letter_llava, task_manager, tmp_path):
    from clsbench.models.lmms.clsbench_hf import ClsbenchHF

    tasks = ["cls_logo_mcq", "cls_food101_mcq", "cls_cub200_mcq"]
    replies, decisions = {}, {}
    for batch_size in (1, 8):
        logs = tmp_path / f"bs{batch_size}"
        model = ClsbenchHF(
            pretrained=str(letter_llava), mode="score", batch_size=batch_size, log_dir=str(logs), answer_store="none"
        )  # both batch sizes must compute, not reuse
        output = _run_in_lmms(model, task_manager, tasks, batch_size)
        replies[batch_size] = {task: [s["resps"][0][0] for s in output["samples"][task]] for task in tasks}
        decisions[batch_size] = _decisions(logs)
    assert replies[1] == replies[8]
    letters = [letter for task in tasks for letter in replies[1][task]]
    assert len(letters) == 18 and set(letters) <= set(LETTERS) and len(set(letters)) >= 2
    assert decisions[1].keys() == decisions[8].keys() and len(decisions[1]) == 18
    for key, record in decisions[1].items():
        assert record["probs"] == pytest.approx(decisions[8][key]["probs"], abs=1e-4)
        assert record["correct"] == (record["pred"] == record["answer"])


@pytest.mark.parametrize("arch", ["llava", "qwen2_vl", "qwen2_5_vl", "llava_onevision", *NEW_ARCHS])
def test_continuation_scores_match_a_plain_forward_pass(request, fixture_root, arch):
    engine = HFVisionLanguageModel(str(request.getfixturevalue(ARCH_FIXTURES[arch])))
    query = fixture_queries(fixture_root, ["logo"])[1]
    prompt = VisualPrompt(query.images, query.question)
    names = list(query.options)
    scores = engine.continuation_scores(prompt, names, chunk=4)  # 10 names in chunks of 4, right-padded
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": query.question}]}]
    chat = engine.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    for name, (logprob, n_tokens, _) in zip(names, scores):
        # reference: the processor tokenizes chat + name in one go (byte tokens: no merges across the seam)
        inputs = engine.processor(text=[chat + name], images=[list(query.images)], return_tensors="pt")
        with torch.inference_mode():
            logits = engine.model(**inputs).logits[0].float()
        target = inputs["input_ids"][0, -n_tokens:]
        reference = torch.log_softmax(logits[-n_tokens - 1 : -1], -1).gather(-1, target[:, None]).sum()
        assert n_tokens == len(name.encode("utf-8"))
        assert logprob == pytest.approx(float(reference), abs=1e-3)
    without_image = engine.option_scores(prompt, names[:3], cfg_weight=1.0)
    assert all(abs(s.logprob - s.uncond_logprob) > 1e-4 for s in without_image), "the unconditional pass kept the image"


@pytest.fixture(scope="module")
def unigram_llava(tiny_llava) -> HFVisionLanguageModel:
    """The tiny LLaVA turned into a context-free unigram LM: the final norm is zeroed, the LM head is a bias."""
    engine = HFVisionLanguageModel(str(tiny_llava))
    with torch.no_grad():
        engine.model.model.language_model.norm.weight.zero_()
        head = torch.nn.Linear(64, engine.model.get_output_embeddings().out_features, bias=True)
        head.weight.zero_()
        head.bias.zero_()
    engine.model.set_output_embeddings(head)
    return engine


def _set_unigram(engine: HFVisionLanguageModel, favoured: str, boost: float) -> torch.Tensor:
    bias = torch.zeros_like(engine.model.get_output_embeddings().bias)
    for token in set(engine.tokenizer.encode(favoured, add_special_tokens=False)):
        bias[token] = boost
    with torch.no_grad():
        engine.model.get_output_embeddings().bias.copy_(bias)
    return torch.log_softmax(bias, 0)


def test_loglik_ranks_the_favoured_class_first_and_sum_and_mean_differ_as_expected(unigram_llava, fixture_root):
    engine = unigram_llava
    # 1. an "oracle": the LM prefers the bytes of the right class name
    for query in fixture_queries(fixture_root, ["logo"]) + fixture_queries(fixture_root, ["food101"])[:2]:
        right = query.options[LETTERS.index(query.meta["answer"])]
        _set_unigram(engine, right, 3.0)
        scores = engine.option_scores(VisualPrompt(query.images, query.question), query.options)
        chosen = query.options[rank_options(scores, "mean")]
        assert chosen == right or set(chosen.encode()) <= set(right.encode()), (query.meta, chosen, right)
    # 2. sum favours few tokens, mean favours likely tokens; both match the analytic log-probabilities
    long_right, short_wrong = "abba cab dab bad cad", "zq"
    logp = _set_unigram(engine, long_right, 3.0)
    prompt = VisualPrompt(query.images, "Which?")
    scores = engine.option_scores(prompt, [long_right, short_wrong])
    for name, score in zip([long_right, short_wrong], scores):
        assert score.logprob == pytest.approx(
            float(sum(logp[t] for t in engine.tokenizer.encode(name, add_special_tokens=False))), abs=1e-3
        )
    assert rank_options(scores, "mean") == 0 and rank_options(scores, "sum") == 1
    # 3. guidance: this LM ignores the image, so the unconditional scores equal the conditional ones
    guided = engine.option_scores(prompt, [long_right, short_wrong], cfg_weight=2.0)
    assert [s.uncond_logprob for s in guided] == pytest.approx([s.logprob for s in guided], abs=1e-4)
    assert rank_options(guided, "sum", 2.0) == 1 and rank_options(guided, "mean", 2.0) == 0


def test_loglik_mode_in_lmms_eval_returns_the_best_names_letter(tiny_llava, task_manager, tmp_path):
    from clsbench.models.lmms.clsbench_hf import ClsbenchHF

    model = ClsbenchHF(pretrained=str(tiny_llava), mode="loglik", loglik_norm="mean", log_dir=str(tmp_path))
    output = _run_in_lmms(model, task_manager, ["cls_logo_mcq"], 1)
    decisions = _decisions(tmp_path)
    for sample in output["samples"]["cls_logo_mcq"]:
        record = decisions[("cls_logo_mcq", sample["doc_id"])]
        options = record["options"]
        best = max(options, key=lambda letter: (options[letter]["logprob"] / options[letter]["n_tokens"], -ord(letter)))
        assert sample["resps"][0][0] == record["pred"] == record["pred_mean"] == best
        assert all(entry["n_tokens"] == len(entry["name"].encode()) for entry in options.values())
        assert sample["decision"]["parsed"] == best  # the task's own parser reads the bare letter
    accuracy = output["results"]["cls_logo_mcq"]["accuracy,none"]
    assert accuracy == pytest.approx(sum(r["correct"] for r in decisions.values()) / len(decisions))


def test_clsbench_hf_through_the_real_lmms_eval_cli(letter_llava, fixture_root, tmp_path):
    logs, out = tmp_path / "logs", tmp_path / "out"
    run = subprocess.run(
        [
            *CLSBENCH,
            "lmms",
            "--data-dir",
            str(fixture_root),
            "--model",
            "clsbench_hf",
            "--model_args",
            f"pretrained={letter_llava},mode=score,log_dir={logs}",
            "--tasks",
            "cls_logo_mcq,cls_food101_mcq",
            "--batch_size",
            "4",
            "--log_samples",
            "--output_path",
            str(out),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(max(out.rglob("*_results.json")).read_text())["results"]
    decisions = _decisions(logs)
    assert len(decisions) == 12
    for task in ("cls_logo_mcq", "cls_food101_mcq"):
        mine = [record for (name, _), record in decisions.items() if name == task]
        assert results[task]["accuracy,none"] == pytest.approx(sum(r["pred"] == r["answer"] for r in mine) / len(mine))
        assert results[task]["unparseable_rate,none"] == 0.0
        logged = [json.loads(line) for line in next(out.rglob(f"*{task}*.jsonl")).read_text().splitlines()]
        for entry in logged:
            assert entry["filtered_resps"][0] == decisions[(task, entry["doc_id"])]["pred"]


def test_errors_name_the_cause(tiny_llava):
    from clsbench.models.lmms.clsbench_hf import ClsbenchHF

    with pytest.raises(ValueError, match="unknown model_args \\['temprature'\\]"):
        ClsbenchHF(pretrained=str(tiny_llava), temprature=0)
    with pytest.raises(ValueError, match="mode must be one of"):
        ClsbenchHF(pretrained=str(tiny_llava), mode="vote")
    answerer = Answerer(HFVisionLanguageModel(str(tiny_llava)), "score")
    query = Query(images=(), prompt="Name this bird.", meta={"task": "birds", "doc_id": 7})
    with pytest.raises(ValueError, match="task birds, doc_id 7 has neither an options list"):
        answerer.answer([query])


def test_loglikelihood_requests_score_the_continuation_after_the_chat_prompt(tiny_llava, fixture_root):
    from lmms_eval.api.instance import Instance

    from clsbench.models.lmms.clsbench_hf import ClsbenchHF

    model = ClsbenchHF(pretrained=str(tiny_llava), log_dir="none")
    docs = add_questions(load_rows("logo", fixture_root), "logo")
    model.task_dict = {"t": {"test": docs}}

    def visual(doc):
        return [open_image(doc["image"], dataset="logo", sample_key=doc["sample_key"])]

    requests = [
        Instance(
            "loglikelihood",
            (docs[i]["question"], name, visual, i, "t", "test"),
            idx=0,
            metadata={"task": "t", "doc_id": i, "repeats": 1},
        )
        for i, name in ((0, docs[0]["options"][0]), (1, lambda doc: doc["options"][1]))
    ]
    results = model.loglikelihood(requests)
    for (logprob, greedy), i, name in zip(results, (0, 1), (docs[0]["options"][0], docs[1]["options"][1])):
        expected = model.engine.continuation_scores(VisualPrompt(tuple(visual(docs[i])), docs[i]["question"]), [name])[
            0
        ]
        assert logprob == pytest.approx(expected[0], abs=1e-4) and greedy == expected[2]
        assert logprob < 0


@pytest.mark.parametrize("mode", ["score", "generate"])
def test_the_input_pipeline_changes_nothing_but_speed(letter_qwen, task_manager, tmp_path, mode):
    """num_workers=2 prepares batches in threads ahead of the model; letters, replies and probabilities are identical,
    and so is batch 1 without it (length-aware batching keeps the result order)."""
    from clsbench.models.lmms.clsbench_hf import ClsbenchHF

    tasks = ["cls_logo_mcq", "cls_food101_mcq"]
    outputs, decisions = {}, {}
    for label, batch_size, workers in (("serial bs1", 1, 0), ("pipeline bs8", 8, 2)):
        logs = tmp_path / label.replace(" ", "_")
        model = ClsbenchHF(
            pretrained=str(letter_qwen),
            mode=mode,
            batch_size=batch_size,
            log_dir=str(logs),
            answer_store="none",
            num_workers=workers,
        )
        output = _run_in_lmms(model, task_manager, tasks, batch_size)
        outputs[label] = {task: [s["resps"][0][0] for s in output["samples"][task]] for task in tasks}
        decisions[label] = _decisions(logs)
        if workers:
            assert 0.0 <= model.padding_fraction < 1.0
    assert outputs["serial bs1"] == outputs["pipeline bs8"]
    for key, record in decisions["serial bs1"].items():
        assert record["probs"] == pytest.approx(decisions["pipeline bs8"][key]["probs"], abs=1e-5)


def test_image_token_estimates_follow_the_architecture(engines):
    llava, qwen = engines["llava"], engines["qwen2_vl"]
    assert llava.image_tokens((500, 375)) == llava.image_tokens((64, 64)) > 0  # fixed-resolution tower
    # the tiny Qwen2-VL processor clamps every image to 32x32 px (16 tokens), and the estimate follows the clamp;
    # growth with the image under Qwen2-VL's real geometry: tests/test_real_tokenizers.py
    assert qwen.image_tokens((500, 500)) == qwen.image_tokens((224, 224)) == qwen.image_tokens((16, 16)) == 16


@pytest.mark.parametrize("arch", ["llava", "qwen2_vl", "qwen2_5_vl", "llava_onevision", *NEW_ARCHS])
def test_loglik_prefix_reuse_equals_the_plain_path(request, fixture_root, arch):
    """One prefill per question + every option from its KV cache gives the plain path's numbers (to 1e-4), with
    and without the image (CFG), so sum, mean and guided rankings are the same; M-RoPE included (Qwen2/2.5/3-VL)."""
    from clsbench.models.engine.scoring import rank_options

    engine = HFVisionLanguageModel(str(request.getfixturevalue(ARCH_FIXTURES[arch])))
    for query in fixture_queries(fixture_root, ["food101"])[:2]:  # 26 options, names of 1 to 7 tokens' width
        prompt = VisualPrompt(query.images, query.question)
        plain = engine.option_scores(prompt, query.options, cfg_weight=1.0, chunk=8, reuse_prefix=False)
        reused = engine.option_scores(prompt, query.options, cfg_weight=1.0, chunk=8, reuse_prefix=True)
        for a, b in zip(plain, reused):
            assert a.n_tokens == b.n_tokens
            assert b.logprob == pytest.approx(a.logprob, abs=1e-4)
            assert b.uncond_logprob == pytest.approx(a.uncond_logprob, abs=1e-4)
        for norm in ("sum", "mean"):
            for weight in (0.0, 1.0):
                assert rank_options(reused, norm, weight) == rank_options(plain, norm, weight)
        # a text-only context right after an image one must not reuse its M-RoPE offsets
        text_only = engine.continuation_scores(prompt, query.options[:3], with_images=False, reuse_prefix=True)
        reference = engine.continuation_scores(prompt, query.options[:3], with_images=False, reuse_prefix=False)
        assert [s[0] for s in text_only] == pytest.approx([s[0] for s in reference], abs=1e-4)


def test_two_processes_give_exactly_the_letters_of_one(letter_llava, fixture_root, tmp_path):
    """Data parallel as users launch it: ``accelerate launch --multi_gpu --num_processes 2 -m lmms_eval`` with
    2 CPU processes (``ACCELERATE_USE_CPU=true``: gloo); clsbench_hf stays on the CPU, each rank logs its own."""
    import os
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = str(task_folder_for(fixture_root))
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "CLSBENCH_LMMS_TASKS": "0",
        "ACCELERATE_USE_CPU": "true",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }

    def run(launcher: list[str], name: str) -> dict:
        args = [
            *launcher,
            "-m",
            "lmms_eval",
            "--model",
            "clsbench_hf",
            "--model_args",
            f"pretrained={letter_llava},mode=score,log_dir={tmp_path / name / 'logs'},answer_store=none",
            "--tasks",
            "cls_logo_mcq,cls_food101_mcq",
            "--batch_size",
            "4",
            "--include_path",
            folder,
            "--output_path",
            str(tmp_path / name / "out"),
            "--log_samples",
        ]
        done = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        letters = {}
        for path in (tmp_path / name / "out").rglob("*_samples_*.jsonl"):
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                letters[(path.name.split("_samples_")[1], entry["doc_id"])] = entry["filtered_resps"]
        return letters

    one = run([sys.executable], "one")
    accelerate = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(port),
    ]
    two = run(accelerate, "two")
    assert len(one) == 12 and two == one
    logs = sorted(path.name for path in (tmp_path / "two" / "logs").glob("*.jsonl"))
    assert any("_rank0_" in name for name in logs) and any("_rank1_" in name for name in logs)
