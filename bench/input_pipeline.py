"""How much of ``clsbench_hf``'s wall time the model is busy, with and without the input pipeline.

The compute-bearing CPU configuration (LLaVA-1.5 layout: 576 image tokens from a 336 px CLIP tower, a
512-wide 4-layer language model, random weights, float32) answers the same fixture questions, with real
500x375 JPEGs, through the real lmms-eval evaluator, in ``score`` mode at batch 8: once with
``num_workers=0`` (decode, processor and model one after another) and once with ``num_workers=1`` (the
next batch is decoded and processed in a thread while the model runs). It prints, per setting, the
wall time inside ``generate_until``, the time inside the model's calls, the model's busy share and the
padding share of the prepared tokens, checks that both settings give the same letters, and ends with
``pipeline_speedup=`` and ``model_busy_with_pipeline=``.

    python bench/input_pipeline.py [--questions 48] [--batch-size 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def jpeg(index: int) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(index)
    pixels = rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def run(model_dir: str, data: Path, questions: int, batch_size: int, workers: int) -> dict:
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from clsbench.models.lmms.clsbench_hf import ClsbenchHF
    from clsbench.tasks.cls_mcq.task_folder import task_folder_for

    model = ClsbenchHF(
        pretrained=model_dir,
        mode="score",
        batch_size=batch_size,
        log_dir="none",
        answer_store="none",
        num_workers=workers,
    )
    inner = type(model).generate_until
    spent = {"wall": 0.0}

    def generate_until(requests):
        began = time.perf_counter()
        replies = inner(model, requests)
        spent["wall"] += time.perf_counter() - began
        spent["replies"] = replies
        return replies

    model.generate_until = generate_until
    manager = TaskManager("ERROR", include_path=str(task_folder_for(data)))
    simple_evaluate(model=model, tasks=["cls_food101_mcq"], task_manager=manager, batch_size=batch_size)
    busy = model.engine.model_seconds
    return {
        "wall": spent["wall"],
        "model": busy,
        "busy": busy / spent["wall"],
        "padding": model.padding_fraction,
        "replies": spent["replies"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2, help="passes per setting; the fastest counts")
    args = parser.parse_args(argv)

    from gpu_throughput import build

    from clsbench.tasks.data.fixtures import fixture_labels
    from clsbench.tasks.data.loading import write_prepared
    from clsbench.tasks.protocol.registry import DATASETS

    with tempfile.TemporaryDirectory(prefix="pipeline_bench_") as scratch:
        work = Path(scratch)
        model_dir = str(build("cpu-compute", work / "model"))
        labels = fixture_labels("food101", args.questions)
        records = [(f"{i}.jpg", jpeg(i), label) for i, label in enumerate(labels)]
        write_prepared(work / "data" / "food101", "food101", records, DATASETS["food101"].classnames, {})
        best = {}
        for _ in range(max(1, args.repeats)):
            for workers in (0, 1):
                result = run(model_dir, work / "data", args.questions, args.batch_size, workers)
                if workers not in best or result["wall"] < best[workers]["wall"]:
                    best[workers] = result
    assert best[0]["replies"] == best[1]["replies"], "the pipeline changed a letter"
    print(
        f"compute-bearing LLaVA layout (576 image tokens, 512-wide 4-layer LM, float32, CPU); {args.questions} "
        f"Food-101 questions with 500x375 JPEGs; score mode, batch {args.batch_size}; best of {args.repeats}"
    )
    for workers, row in best.items():
        print(
            f"num_workers={workers}: wall {row['wall']:6.2f} s, in the model {row['model']:6.2f} s, model busy "
            f"{100 * row['busy']:5.1f} %, preprocessing and rest {100 * (1 - row['busy']):5.1f} %, padding "
            f"{100 * row['padding']:4.1f} % of prompt tokens"
        )
    print("letters identical with and without the pipeline: yes")
    print(f"pipeline_speedup={best[0]['wall'] / best[1]['wall']:.2f}")
    print(f"model_busy_with_pipeline={100 * best[1]['busy']:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
