"""Real-size throughput of ``clsbench_hf``'s answer modes on one GPU, with no download.

Builds a random-weight model with the shapes of LLaVA-1.5-7B (CLIP ViT-L/14 at 336 px: 576 image
tokens; a Llama-7B language model) from config classes, in bf16, saves it and loads it back through
the same ``HFVisionLanguageModel`` / ``Answerer`` that ``clsbench_hf`` uses, then asks real clsbench
questions (the paper's prompt with 26 ImageNet options) about synthetic 500x375 images. Prints, per
mode, questions/s, prompt tokens, achieved TFLOP/s (2 x parameters x tokens processed) and MFU, plus
the floor: the processor and one bare forward per batch. The tokenizer is byte-level (every character a token),
so prompts are about 3x longer in tokens than with Llama's tokenizer: the numbers are an upper bound
on the text side's cost and are printed with the token counts they came from.

    python bench/gpu_throughput.py --questions 128 --batch-size 16        # one H100/H200-class GPU, ~5 min
    python bench/gpu_throughput.py --shape tiny --questions 16             # the same code path on CPU
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

SHAPES = {
    # CLIP ViT-L/14-336 + Llama-2-7B (LLaVA-1.5-7B's towers)
    "llava-1.5-7b": {
        "vision": dict(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=336,
            patch_size=14,
            projection_dim=768,
        ),
        "text": dict(
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
        ),
    },
    # compute-bearing on a CPU: the real 576 image tokens (336 px, patch 14), a 512-wide 4-layer language model
    "cpu-compute": {
        "vision": dict(
            hidden_size=256,
            intermediate_size=1024,
            num_hidden_layers=4,
            num_attention_heads=8,
            image_size=336,
            patch_size=14,
            projection_dim=256,
        ),
        "text": dict(
            hidden_size=512, intermediate_size=1376, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=8
        ),
    },
    "tiny": {
        "vision": dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=336,
            patch_size=14,
            projection_dim=64,
        ),
        "text": dict(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
        ),
    },
}
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0}  # dense bf16, the vendors' figures


def build(shape: str, out: Path) -> Path:
    """Save a random-weight LLaVA of the given shape, with clsbench's byte-level tokenizer and processor."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        GenerationConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from clsbench.models.fixtures import CHAT_TEMPLATE, SPECIAL_TOKENS, _build_tokenizer

    tokenizer = _build_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    spec = SHAPES[shape]
    vision = CLIPVisionConfig(**spec["vision"])
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=8192,
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        pad_token_id=ids["<pad>"],
        **spec["text"],
    )
    patches = (spec["vision"]["image_size"] // spec["vision"]["patch_size"]) ** 2
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=ids["<image>"],
        image_seq_length=patches,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    with torch.device(device):
        model = LlavaForConditionalGeneration(config).to(torch.bfloat16 if device == "cuda" else torch.float32).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        pad_token_id=ids["<pad>"],
        suppress_tokens=[ids[t] for t in ("<unk>", "<s>", "</s>", "<pad>", "<image>")],
        do_sample=False,
    )
    model.save_pretrained(out, safe_serialization=True)
    size = spec["vision"]["image_size"]
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}),
        tokenizer=tokenizer,
        patch_size=spec["vision"]["patch_size"],
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


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
                max_new_tokens=16,
                meta={"answer": sample.answer},
            )
        )
    return out


def builtin_llava_hf(folder: Path, items) -> dict:
    """lmms-eval's own ``llava_hf`` (batch 1, greedy, the task's 16 new tokens) on the same questions."""
    from lmms_eval.api.instance import Instance
    from lmms_eval.models.simple.llava_hf import LlavaHf

    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    model = LlavaHf(pretrained=str(folder), device=device, device_map=device)
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
    seconds = timed(lambda: model.generate_until(requests), repeats=1)
    model.model.to("cpu")  # give the GPU memory back before the next rows
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return {"questions": len(items), "seconds": seconds, "questions_per_s": len(items) / seconds}


def timed(function, repeats: int = 2) -> float:
    """Best wall time of ``repeats`` runs after one warm-up, synchronised on the GPU."""
    function()
    best = float("inf")
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        began = time.perf_counter()
        function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - began)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="llava-1.5-7b")
    parser.add_argument("--questions", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--loglik-questions", type=int, default=16, help="loglik is ~26x dearer: fewer questions")
    parser.add_argument("--work-dir", help="where the random checkpoint goes (default: a temporary folder)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)

    from clsbench.models.engine.answering import Answerer
    from clsbench.models.engine.hf_vlm import HFVisionLanguageModel, VisualPrompt

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="clsbench-gpu-bench-"))
    began = time.perf_counter()
    folder = build(args.shape, work / args.shape)
    engine = HFVisionLanguageModel(str(folder))
    print(
        f"built and loaded {args.shape} in {time.perf_counter() - began:.0f} s on {engine.device} ({engine.dtype})",
        file=sys.stderr,
        flush=True,
    )
    params = sum(p.numel() for p in engine.model.parameters())
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu), None)
    batch = questions(args.questions)
    size = args.batch_size

    def batches(items):
        return [items[i : i + size] for i in range(0, len(items), size)]

    prompts = [VisualPrompt(tuple(q.images), q.prompt) for q in batch]
    inputs = engine.encode(prompts[:size])
    prompt_tokens = int(inputs["attention_mask"].sum()) / len(prompts[:size])

    rows = {}

    letters: dict[str, list[str]] = {}

    def run_mode(mode: str, items, label: str | None = None, **settings) -> None:
        answerer = Answerer(engine, mode, **settings)
        step = 1 if mode == "loglik" else size
        replies: list[str] = []

        def once() -> None:
            replies.clear()
            for i in range(0, len(items), step):
                replies.extend(reply.text for reply in answerer.answer(items[i : i + step]))

        seconds = timed(once, repeats=1)
        rows[label or mode] = {"questions": len(items), "seconds": seconds, "questions_per_s": len(items) / seconds}
        letters[label or mode] = list(replies)

    for mode in ("score", "generate"):
        run_mode(mode, batch)
    run_mode("loglik", batch[: args.loglik_questions])  # prefix reuse: one prefill per question
    few = batch[: max(1, args.loglik_questions // 4)]  # the plain path costs ~26 prefills per question
    run_mode("loglik", few, "loglik, no reuse (0.2)", loglik_reuse=False)
    assert letters["loglik, no reuse (0.2)"] == letters["loglik"][: len(few)], "prefix reuse changed a loglik letter"
    rows["lmms-eval llava_hf (bs 1)"] = builtin_llava_hf(folder, batch[: max(size, args.questions // 4)])

    def score_with_pipeline() -> list[str]:  # clsbench_hf's num_workers=1: the next batch is prepared in a thread
        from concurrent.futures import ThreadPoolExecutor

        answerer = Answerer(engine, "score")
        chunks = batches(batch)
        letters = []
        with ThreadPoolExecutor(max_workers=1) as pool:
            ahead = pool.submit(answerer.prepare, chunks[0])
            for number, chunk in enumerate(chunks):
                inputs = ahead.result()
                if number + 1 < len(chunks):
                    ahead = pool.submit(answerer.prepare, chunks[number + 1])
                letters += [reply.text for reply in answerer.answer(chunk, inputs)]
        return letters

    serial = Answerer(engine, "score")
    expected = [reply.text for chunk in batches(batch) for reply in serial.answer(chunk)]
    assert score_with_pipeline() == expected, "the input pipeline changed a letter"
    print(f"input pipeline: the same {len(expected)} letters as one batch after another", file=sys.stderr)
    seconds = timed(score_with_pipeline, repeats=1)
    rows["score, input pipeline"] = {
        "questions": len(batch),
        "seconds": seconds,
        "questions_per_s": len(batch) / seconds,
    }

    def floor() -> None:  # the processor and one bare forward per batch: the least any mode can cost
        with torch.inference_mode():
            for chunk in batches(prompts):
                engine.model(**engine.encode(chunk), logits_to_keep=1)

    seconds = timed(floor, repeats=1)
    rows["floor (bare forward)"] = {
        "questions": len(prompts),
        "seconds": seconds,
        "questions_per_s": len(prompts) / seconds,
    }

    print(
        f"{args.shape}: {params / 1e9:.2f} B parameters, {gpu}, batch {size}, "
        f"~{prompt_tokens:.0f} prompt tokens per question (576 image tokens + byte-level text)"
    )
    for name, row in rows.items():
        tflops = 2 * params * prompt_tokens * row["questions_per_s"] / 1e12
        mfu = f"{100 * tflops / peak:.0f} %" if peak and not name.startswith("loglik") else "-"  # loglik: 26 options
        row.update(tflops_prefill=tflops)
        print(
            f"{name:<26} {row['questions']:>5} questions {row['seconds']:>8.2f} s {row['questions_per_s']:>8.2f} q/s "
            f"prefill {tflops:>7.1f} TFLOP/s  MFU {mfu}"
        )
    if rows:
        print(
            f"score_over_floor={rows['floor (bare forward)']['questions_per_s'] / rows['score']['questions_per_s']:.2f}"
        )
    print(f"score_speedup_vs_generate={rows['score']['questions_per_s'] / rows['generate']['questions_per_s']:.2f}")
    print(f"pipeline_speedup={rows['score, input pipeline']['questions_per_s'] / rows['score']['questions_per_s']:.2f}")
    rate = {name: row["questions_per_s"] for name, row in rows.items()}
    print(f"score_speedup_vs_builtin={rate['score'] / rate['lmms-eval llava_hf (bs 1)']:.2f}")
    print(f"loglik_reuse_speedup={rate['loglik'] / rate['loglik, no reuse (0.2)']:.2f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "shape": args.shape,
                    "gpu": gpu,
                    "params": params,
                    "batch": size,
                    "prompt_tokens": prompt_tokens,
                    "rows": rows,
                },
                indent=1,
            )
        )
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
