"""Throughput of lmms-eval's built-in ``llava_hf`` against ``clsbench_hf`` (generate, score), in one process, offline.

Same tiny random-weight LLaVA-1.5 (``clsbench.models.fixtures``), same fixture questions, same
lmms-eval evaluator and task YAMLs (``max_new_tokens: 16``), float32 on CPU. Only the time spent
inside each model's ``generate_until`` is counted (model loading, dataset loading and scoring
are the same for all three and excluded). ``llava_hf`` supports batch size 1 only; ``clsbench_hf``
runs batched. The three paths run in turn ``--repeats`` times and each reports its best pass, so
a busy machine (other processes on the same cores) distorts the ratio less. Then
``bench/input_pipeline.py`` prints the preprocessing share of wall time with and without the input
pipeline on a compute-bearing configuration (576 image tokens, a 512-wide language model).

    python bench/mllm_throughput.py [--samples 8] [--tasks cls_food101_mcq,...] [--batch-size 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

DEFAULT_TASKS = "cls_food101_mcq,cls_cub200_mcq,cls_flowers102_mcq,cls_stanfordcars_mcq,cls_caltech101_mcq,cls_logo_mcq"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=8, help="fixture questions per dataset")
    parser.add_argument("--tasks", default=DEFAULT_TASKS, help="comma-separated clsbench lmms-eval tasks")
    parser.add_argument("--batch-size", type=int, default=8, help="clsbench_hf batch size (llava_hf only supports 1)")
    parser.add_argument("--repeats", type=int, default=3, help="passes per path; the fastest counts")
    parser.add_argument("--work-dir", help="keep fixtures and the model here (default: a temporary folder)")
    parser.add_argument(
        "--no-pipeline",
        dest="pipeline",
        action="store_false",
        help="skip the input-pipeline measurement on the compute-bearing configuration",
    )
    return parser.parse_args(argv)


def timed_pass(model, tasks: list[str], manager, batch_size: int) -> tuple[int, float, float]:
    """Evaluate ``model`` on ``tasks`` once: (questions, seconds inside ``generate_until``, mean accuracy)."""
    from lmms_eval.evaluator import simple_evaluate

    inner = type(model).generate_until
    spent = {"seconds": 0.0, "requests": 0}

    def generate_until(requests):
        began = time.perf_counter()
        replies = inner(model, requests)
        spent["seconds"] += time.perf_counter() - began
        spent["requests"] += len(requests)
        return replies

    model.generate_until = generate_until
    output = simple_evaluate(model=model, tasks=tasks, task_manager=manager, batch_size=batch_size)
    accuracy = [output["results"][task]["accuracy,none"] for task in tasks]
    return spent["requests"], spent["seconds"], sum(accuracy) / len(accuracy)


def bench(args: argparse.Namespace, work: Path) -> int:
    from lmms_eval.models.simple.llava_hf import LlavaHf
    from lmms_eval.tasks import TaskManager

    from clsbench.models.fixtures import build_tiny_llava
    from clsbench.models.lmms.clsbench_hf import ClsbenchHF
    from clsbench.tasks.cls_mcq._generate_configs import task_folder_for
    from clsbench.tasks.data.fixtures import write_fixture_data
    from clsbench.tasks.protocol.catalog import task_name
    from clsbench.tasks.protocol.registry import DATASETS

    tasks = [task.strip() for task in args.tasks.split(",") if task.strip()]
    keys = [key for key in DATASETS if task_name(key) in tasks]
    data = write_fixture_data(work / "data", args.samples, keys=keys)
    model_dir = str(build_tiny_llava(work / "tiny-llava"))
    manager = TaskManager("ERROR", include_path=str(task_folder_for(data)))
    size = args.batch_size
    # lmms-eval's evaluator frees the model's weights when it finishes (lmms.clean), so each pass loads a fresh one
    paths = {
        "lmms-eval llava_hf (bs 1)": (lambda: LlavaHf(pretrained=model_dir, device_map="cpu", device="cpu"), 1),
        f"clsbench_hf generate (bs {size})": (
            lambda: ClsbenchHF(
                pretrained=model_dir, mode="generate", batch_size=size, log_dir="none", answer_store="none"
            ),
            size,
        ),
        f"clsbench_hf score (bs {size})": (
            lambda: ClsbenchHF(
                pretrained=model_dir, mode="score", batch_size=size, log_dir="none", answer_store="none"
            ),
            size,
        ),
    }
    print(
        f"tiny LLaVA-1.5 (random weights, float32, CPU); {len(tasks)} tasks x {args.samples} fixture questions; "
        f"best of {args.repeats} passes",
        flush=True,
    )
    best: dict[str, tuple[int, float, float]] = {}
    for _ in range(max(1, args.repeats)):
        for label, (load, batch_size) in paths.items():
            result = timed_pass(load(), tasks, manager, batch_size)
            if label not in best or result[1] < best[label][1]:
                best[label] = result
    rates = {}
    for label, (questions, seconds, accuracy) in best.items():
        rates[label] = questions / seconds
        print(
            f"{label:<28} {questions:>4} questions  {seconds:7.2f} s  {rates[label]:8.2f} samples/s  "
            f"mean accuracy {accuracy:.3f}"
        )
    builtin, generate, score = rates.values()
    print(f"generate_speedup_vs_builtin={generate / builtin:.2f}")
    print(f"score_speedup_vs_builtin={score / builtin:.2f}")
    if args.pipeline:  # the preprocessing share, with and without the input pipeline, where compute matters
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from input_pipeline import main as pipeline_bench

        print()
        pipeline_bench(["--questions", "32", "--batch-size", str(size), "--repeats", "1"])
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mllm_bench_") as scratch:
        return bench(args, Path(args.work_dir or scratch))


if __name__ == "__main__":
    sys.exit(main())
