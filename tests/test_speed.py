"""Speed paths that must not change an answer (issue 30): the compiled forward gives eager's letters, batched loglik
gives the one-question path's scores and letters, and the GPU bench's tiny shape runs every row on a CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clsbench.models.engine.answering import Answerer
from clsbench.models.engine.hf_vlm import HFVisionLanguageModel, VisualPrompt, compile_mode
from clsbench.models.fixtures import build_tiny_llava, build_tiny_qwen2_vl

sys.path.insert(0, str(Path(__file__).parent))
from test_models_hf import fixture_queries  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def speed_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.getbasetemp() / "clsbench-models"
    return {
        "llava": build_tiny_llava(root / "tiny-llava-speed"),
        "qwen2_vl": build_tiny_qwen2_vl(root / "tiny-qwen2-vl"),
    }


def test_compile_argument_values():
    assert compile_mode(False) is None and compile_mode("none") is None and compile_mode(None) is None
    assert compile_mode(True) == "default" and compile_mode("true") == "default"
    assert compile_mode("max-autotune") == "max-autotune"
    with pytest.raises(ValueError, match="compile must be"):
        compile_mode("fast")


def test_compiled_score_gives_eager_letters_with_one_graph_for_every_batch(speed_models, fixture_root):
    """Inductor on a CPU (~35 s for the one graph): letters equal eager's; a second batch size compiles nothing."""
    import torch

    queries = fixture_queries(fixture_root, ["food101"])[:4]
    eager = Answerer(HFVisionLanguageModel(str(speed_models["llava"])), "score")
    expected = [reply.text for reply in eager.answer(queries)]
    torch._dynamo.reset()
    engine = HFVisionLanguageModel(str(speed_models["llava"]), compile=True)
    compiled = Answerer(engine, "score")
    assert [reply.text for reply in compiled.answer(queries)] == expected
    graphs = engine.compiled_graphs()
    assert [reply.text for reply in compiled.answer(queries[:3])] == expected[:3]  # another batch size and length
    assert engine.compiled_graphs() == graphs == 1
    for got, want in zip(compiled.answer(queries), eager.answer(queries)):
        assert got.record["probs"] == pytest.approx(want.record["probs"], abs=1e-4)


@pytest.mark.parametrize("arch", ["llava", "qwen2_vl"])
def test_batched_loglik_equals_one_question_at_a_time(speed_models, fixture_root, arch):
    """A batch's questions in one prefill and one packed step give the one-question path's numbers (to 1e-4) with
    and without the image, so sum, mean and guided letters are the same; M-RoPE (Qwen2-VL) included."""
    engine = HFVisionLanguageModel(str(speed_models[arch]))
    queries = fixture_queries(fixture_root, ["food101", "logo"])  # 26 and 10 options: rows of different widths
    prompts = [VisualPrompt(query.images, query.question) for query in queries]
    batched = engine.batch_option_scores(prompts, [query.options for query in queries], cfg_weight=1.0)
    for prompt, query, scores in zip(prompts, queries, batched):
        single = engine.option_scores(prompt, query.options, cfg_weight=1.0)
        assert [s.n_tokens for s in scores] == [s.n_tokens for s in single]
        assert [s.logprob for s in scores] == pytest.approx([s.logprob for s in single], abs=1e-4)
        assert [s.uncond_logprob for s in scores] == pytest.approx([s.uncond_logprob for s in single], abs=1e-4)
    for norm in ("sum", "mean"):
        for weight in (0.0, 1.0):
            answerer = Answerer(engine, "loglik", loglik_norm=norm, cfg_weight=weight)
            together = answerer.answer(queries)
            answerer.loglik_batched = False
            alone = [answerer.answer([query])[0] for query in queries]
            assert [r.text for r in together] == [r.text for r in alone], (norm, weight)
            for a, b in zip(together, alone):
                for letter, option in a.record["options"].items():
                    assert option["logprob"] == pytest.approx(b.record["options"][letter]["logprob"], abs=1e-4)


def test_gpu_bench_tiny_shape_runs_every_row_on_a_cpu(tmp_path):
    """``bench/gpu_throughput.py --shape tiny``: every row on a CPU, with the three figures the issue asks."""
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "gpu_throughput.py"),
            "--shape",
            "tiny",
            "--questions",
            "8",
            "--batch-size",
            "4",
            "--loglik-questions",
            "4",
            "--rounds",
            "1",
            "--compile-backend",
            "aot_eager",
            "--work-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for figure in ("compiled_speedup=", "loglik_over_score=", "table2_hours_8gpu="):
        assert figure in run.stdout, run.stdout


@pytest.mark.parametrize("arch", ["llava", "qwen2_vl"])
def test_one_question_loglik_copies_no_kv_cache(speed_models, fixture_root, monkeypatch, arch):
    """One question at a time (``loglik_batched=False``, batch 1) packs its options into one row over the prefix
    cache: the context's KV cache is neither deep-copied nor repeated per option (26 copies per question made the
    path memory-bound and sensitive to a competing process), and the numbers equal the plain path's."""
    import copy

    from transformers.cache_utils import Cache

    engine = HFVisionLanguageModel(str(speed_models[arch]))
    query = fixture_queries(fixture_root, ["food101"])[0]  # 26 options
    prompt = VisualPrompt(query.images, query.question)
    plain = engine.option_scores(prompt, query.options, cfg_weight=1.0, reuse_prefix=False)

    def refused(*args, **kwargs):
        raise AssertionError("the KV cache was copied per option")

    monkeypatch.setattr(Cache, "batch_repeat_interleave", refused)
    deep_copy = copy.deepcopy
    monkeypatch.setattr(
        copy, "deepcopy", lambda value, *a: refused() if isinstance(value, Cache) else deep_copy(value, *a)
    )
    reused = engine.option_scores(prompt, query.options, cfg_weight=1.0, reuse_prefix=True)
    assert [s.n_tokens for s in reused] == [s.n_tokens for s in plain]
    assert [s.logprob for s in reused] == pytest.approx([s.logprob for s in plain], abs=1e-4)
    assert [s.uncond_logprob for s in reused] == pytest.approx([s.uncond_logprob for s in plain], abs=1e-4)
    answerer = Answerer(engine, "loglik", cfg_weight=1.0)
    answerer.loglik_batched = False
    assert answerer.answer([query])[0].text in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
