"""``clsbench report``: small result folders in all three formats, and the exact numbers they must give."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from clsbench.tasks.protocol.catalog import task_name
from clsbench.tasks.protocol.registry import DATASETS
from clsbench.tasks.report.build import write_report
from clsbench.tasks.report.subsets import load_subset

CLSBENCH = [sys.executable, "-m", "clsbench.tasks.cli"]
NAMES = {key: spec.classnames for key, spec in DATASETS.items()}

# lmms-eval model: all ten datasets, general mean 62.5, fine-grained mean 2.2 / 6 = 36.7 %.
LMMS_FULL = {
    "imagenet": 0.5,
    "imagenetv2": 0.25,
    "objectnet": 0.75,
    "caltech101": 1.0,
    "cub200": 0.1,
    "food101": 0.2,
    "gldv2": 0.3,
    "logo": 0.625,
    "flowers102": 0.4,
    "stanfordcars": 0.575,
}
# (label, correct) per logged sample, consistent with the accuracies above (4/8 and 5/8).
LMMS_SAMPLES = {
    "imagenet": [(0, 1), (0, 1), (1, 1), (1, 0), (2, 0), (2, 0), (3, 1), (3, 0)],
    "logo": [(0, 1), (0, 1), (0, 1), (0, 0), (1, 0), (1, 0), (2, 1), (2, 1)],
}


# ---------------------------------------------------------------- builders, one per format


def write_lmms_run(
    root: Path, pretrained: str, date: str, accuracies: dict[str, float], samples: dict | None = None
) -> Path:
    """An lmms-eval --output_path entry, shaped like the demo's (results with stderr keys, a samples file per task)."""
    folder = root / pretrained.replace("/", "__")
    folder.mkdir(parents=True, exist_ok=True)
    results = {
        task_name(key): {
            "alias": task_name(key),
            "accuracy,none": value,
            "accuracy_stderr,none": "N/A",
            "unparseable_rate,none": 0.0,
        }
        for key, value in accuracies.items()
    }
    results["cls_mcq"] = {"alias": "cls_mcq", "accuracy,none": 0.0}
    content = {
        "results": results,
        "config": {"model": "llava_hf", "model_args": f"pretrained={pretrained},device_map=cpu"},
        "model_name": pretrained,
        "model_name_sanitized": folder.name,
        "date": date,
    }
    path = folder / f"{date}_results.json"
    path.write_text(json.dumps(content), "utf-8")
    for key, pairs in (samples or {}).items():
        lines = [
            json.dumps(
                {
                    "doc_id": i,
                    "target": "A",
                    "accuracy": {
                        "parsed": "A" if ok else None,
                        "answer": "A",
                        "correct": ok,
                        "unparseable": 0,
                        "sample_key": str(i),
                        "label": label,
                    },
                }
            )
            for i, (label, ok) in enumerate(pairs)
        ]
        (folder / f"{date}_samples_{task_name(key)}.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    return path


def write_clip_dataset(
    run_dir: Path,
    key: str,
    pairs: list[tuple[int, int]] | None,
    accuracy: float | None = None,
    per_class: dict[str, float] | None = None,
) -> None:
    """A ``clsbench clip`` summary (format clsbench-clip-v1) and, given pairs, its predictions file."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if pairs is not None:
        lines = [
            json.dumps({"sample_key": str(i), "label": label, "prediction": label if ok else -1, "correct": ok})
            for i, (label, ok) in enumerate(pairs)
        ]
        (run_dir / f"{key}.predictions.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
        accuracy = sum(ok for _, ok in pairs) / len(pairs)
    summary = {
        "format": "clsbench-clip-v1",
        "model": "ViT-B-32",
        "pretrained": "openai",
        "mode": "mcq",
        "templates": "ensemble",
        "seed": 0,
        "n_options": 26,
        "dataset": key,
        "accuracy": accuracy,
        "n_samples": len(pairs or []),
        "per_class_accuracy": per_class or {},
    }
    (run_dir / f"{key}.json").write_text(json.dumps(summary), "utf-8")


def vlmeval_rows(key: str, rows: list[tuple[int, list[int], str]]) -> list[dict]:
    """VLMEvalKit MCQ rows: (right option position, option class indices, raw reply)."""
    table = []
    for index, (right, options, reply) in enumerate(rows):
        row = {"index": index, "question": "What food is this?", "answer": "ABCD"[right], "prediction": reply}
        row.update({"ABCD"[i]: NAMES[key][c] for i, c in enumerate(options)})
        table.append(row)
    return table


def write_vlmeval(run_dir: Path, model: str, key: str, overall: float | None, rows: list[dict] | None) -> None:
    """``<model>_ClsBench_<key>_acc.csv`` (split, Overall) and/or the prediction TSV, in a T<stamp> folder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{model}_{DATASETS[key].vlmeval_name}"
    if overall is not None:
        (run_dir / f"{stem}_acc.csv").write_text(f"split,Overall\nnone,{overall}\n", "utf-8")
    if rows is not None:
        columns = ["index", "question", "answer", "prediction", "A", "B", "C", "D"]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, columns, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        (run_dir / f"{stem}.tsv").write_text(buffer.getvalue(), "utf-8")


# food101: apple pie (0) 2 right of 3 (one reply unparseable), baklava (2) 0 of 1 -> 2/4 = 50 %.
FOOD_ROWS = [
    (0, [0, 1, 2, 3], "A"),
    (1, [1, 0, 2, 3], "The answer is (B)."),
    (0, [0, 2, 1, 3], "I think it is C"),
    (2, [1, 3, 2, 0], "baklava? no: D"),
]
FOOD_ROWS_FIXED = [
    (0, [0, 1, 2, 3], "A"),
    (1, [1, 0, 2, 3], "The answer is (B)."),
    (0, [0, 2, 1, 3], "I think it is C"),
    (2, [1, 3, 2, 0], "A"),
]
# imagenet, predictions only: tench 1/1 by class name, goldfish 0/1 -> 50 %.
IMAGENET_ROWS = [(1, [2, 0, 1, 3], "tench"), (0, [1, 0, 2, 3], "B")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    lmms = root / "lmms"
    # Three runs of one model and protocol: cells they share agree, so they fill one row (see the conflict test).
    write_lmms_run(lmms, "org/model-a", "20260101_000000", LMMS_FULL)
    write_lmms_run(lmms, "org/model-a", "20260102_000000", {"logo": LMMS_FULL["logo"]}, {"logo": LMMS_SAMPLES["logo"]})
    write_lmms_run(
        lmms,
        "org/model-a",
        "20260101_120000",
        {k: LMMS_FULL[k] for k in ("imagenet", "logo")},
        {"imagenet": LMMS_SAMPLES["imagenet"]},
    )
    write_lmms_run(
        lmms,
        "/ckpt/model-b",
        "20260103_000000",
        {"imagenet": 0.4, "imagenetv2": 0.3, "objectnet": 0.2, "caltech101": 0.1, "cub200": 0.5},
    )

    clip = root / "clip" / "ViT-B-32__openai"
    monotone = [(label, int(i < right)) for label, right in ((0, 4), (1, 3), (2, 1), (3, 0)) for i in range(4)]
    write_clip_dataset(
        clip, "imagenet", monotone
    )  # tench 100 %, goldfish 75 %, great white shark 25 %, tiger shark 0 %
    write_clip_dataset(clip, "imagenetv2", [(0, 1), (1, 0)])
    write_clip_dataset(clip, "objectnet", None, accuracy=0.35, per_class={"Bucket": 0.5, "Tie": 0.1})
    write_clip_dataset(clip, "caltech101", [(0, 1), (1, 1), (2, 1), (2, 0)])

    vlmeval = root / "vlmeval" / "InternVL2-8B"
    old, new = vlmeval / "T20260101-000000", vlmeval / "T20260105-000000"
    write_vlmeval(old, "InternVL2-8B", "food101", 0.9, vlmeval_rows("food101", FOOD_ROWS_FIXED))
    write_vlmeval(new, "InternVL2-8B", "food101", 0.5, vlmeval_rows("food101", FOOD_ROWS))
    write_vlmeval(new, "InternVL2-8B", "caltech101", 80.0, None)  # a percentage
    write_vlmeval(new, "InternVL2-8B", "imagenet", None, vlmeval_rows("imagenet", IMAGENET_ROWS))
    for path in new.iterdir():  # run.py links the newest files into the model folder
        (vlmeval / path.name).symlink_to(path)
    return {"lmms": lmms, "clip": root / "clip", "vlmeval": root / "vlmeval", "root": root}


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("report")
    subset = runs["root"] / "fish.txt"
    subset.write_text("# two fish\ntench\nGoldfish\nno such class\n", "utf-8")
    frequencies = runs["root"] / "freq.json"
    frequencies.write_text(json.dumps({"tench": 1000, "goldfish": 500, "great white shark": 20, "tiger shark": 3}))
    echoed: list[str] = []
    table = write_report(
        [runs["lmms"], runs["clip"], runs["vlmeval"]],
        out,
        worst=2,
        subset=str(subset),
        frequencies=frequencies,
        scatter=True,
        echo=echoed.append,
    )
    return {"out": out, "table": table, "echo": "\n".join(echoed)}


def csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


def by_model(rows: list[dict[str, str]], key: str = "Model") -> dict[str, dict[str, str]]:
    return {row[key]: row for row in rows}


# ---------------------------------------------------------------- the table


def test_markdown_table_exact_rows(report):
    lines = report["table"].splitlines()
    assert lines[0] == (
        "| Model | IMN | IMNv2 | ONet | C101 | CUB | Food | GLMK | Logo | Flower | SCar "
        "| General Avg. | Fine-grained Avg. |"
    )
    assert lines[2:] == [
        # † the fixtures' predictions are a few rows of each split, not the paper's (its average wears † too)
        "| ViT-B-32 (openai) [clip mcq] | 50.0† | 50.0† | 35.0† | 75.0† | — | — | — | — | — | — | 52.5† | — |",
        "| InternVL2-8B | 50.0† | — | — | 80.0 | — | 50.0† | — | — | — | — | — | — |",  # C101: an _acc.csv only
        "| llava_hf (model-b) | 40.0 | 30.0 | 20.0 | 10.0 | 50.0 | — | — | — | — | — | 25.0 | — |",
        "| llava_hf (org/model-a) | 50.0 | 25.0 | 75.0 | 100.0 | 10.0 | 20.0 | 30.0 | 62.5 | 40.0 | 57.5 "
        "| 62.5 | 36.7 |",
    ]
    assert (report["out"] / "table.md").read_text().startswith(report["table"])


def test_csv_has_empty_missing_cells_and_types(report):
    rows = by_model(csv_rows(report["out"] / "table.csv"))
    assert rows["llava_hf (org/model-a)"]["Fine-grained Avg."] == "36.7"
    assert rows["llava_hf (org/model-a)"]["Logo"] == "62.5"
    assert rows["llava_hf (model-b)"]["GLMK"] == "" and rows["llava_hf (model-b)"]["General Avg."] == "25.0"
    assert rows["ViT-B-32 (openai) [clip mcq]"]["Type"] == "CLIP"
    assert rows["InternVL2-8B"]["Toolkit"] == "vlmeval" and rows["InternVL2-8B"]["Type"] == "MLLM"
    assert rows["InternVL2-8B"]["Food"] == "50.0"  # the newer T folder, counted once despite the symlinks
    assert rows["InternVL2-8B"]["C101"] == "80.0"  # percent detected


def test_latex_is_booktabs_with_dashes_for_missing(report):
    tex = (report["out"] / "table.tex").read_text()
    assert tex.startswith(r"\begin{tabular}{lrrrrrrrrrrrr}" + "\n" + r"\toprule")
    assert r"\bottomrule" in tex and tex.count(r"\midrule") == 2
    assert r"llava\_hf (model-b) & 40.0 & 30.0 & 20.0 & 10.0 & 50.0 & -- & -- & -- & -- & -- & 25.0 & -- \\" in tex
    assert r"\textit{CLIP-style models}" in tex.split(r"\textit{MLLMs}")[0]


def test_missing_datasets_and_notes_are_said(report):
    echo = report["echo"]
    assert "Missing datasets: ViT-B-32 (openai) [clip mcq]: CUB, Food, GLMK, Logo, Flower, SCar;" in echo
    assert "llava_hf (model-b): Food, GLMK, Logo, Flower, SCar" in echo
    assert "llava_hf (org/model-a)" not in echo.split("Missing datasets:")[1].splitlines()[0]
    assert "Overall 80.0 is a percentage" in echo
    assert "InternVL2-8B_ClsBench_imagenet.tsv: no _acc.csv, accuracy computed from the predictions" in echo
    assert "90.00%" not in echo  # notes about a superseded run are not said
    assert "subset fish: 1 names match no class of any dataset: no such class" in echo


# ---------------------------------------------------------------- per class, worst classes, subsets, spearman


def test_per_class_from_each_format(report):
    rows = {(r["model"], r["dataset"], r["class"]): r for r in csv_rows(report["out"] / "per_class.csv")}

    def counts(model: str, key: str, name: str) -> tuple[str, ...]:
        return tuple(rows[(model, key, name)][column] for column in ("n", "correct", "accuracy"))

    assert counts("llava_hf (org/model-a)", "logo", "361 Degrees") == ("4", "3", "0.7500")
    assert rows[("llava_hf (org/model-a)", "imagenet", "great white shark")]["correct"] == "0"
    assert rows[("ViT-B-32 (openai) [clip mcq]", "imagenet", "goldfish")]["accuracy"] == "0.7500"
    assert counts("ViT-B-32 (openai) [clip mcq]", "objectnet", "Tie") == ("", "", "0.1000")  # summary only: no counts
    # VLMEvalKit: grouped by the right option's text, re-scored with clsbench's parser
    assert counts("InternVL2-8B", "food101", "apple pie") == ("3", "2", "0.6667")
    assert rows[("InternVL2-8B", "food101", "baklava")]["correct"] == "0"
    assert rows[("InternVL2-8B", "imagenet", "tench")]["correct"] == "1"


def test_worst_classes_per_model_and_dataset(report):
    text = (report["out"] / "worst_classes.md").read_text()
    section = text.split("## llava_hf (org/model-a)")[1].split("**Logo**")[0]
    assert section.index("| great white shark | 0.0 | 0 / 2 |") < section.index("| goldfish | 50.0 | 1 / 2 |")
    assert "tench" not in section  # only the worst 2
    assert "| Adidas | 0.0 | 0 / 2 |" in text
    assert "No per-sample results" in text.split("## llava_hf (model-b)")[1]


def test_subset_split_from_a_class_list(report):
    md = (report["out"] / "subset.md").read_text().splitlines()
    assert md[0] == "| Model | IMN in | IMN out | IMNv2 in | IMNv2 out |"
    assert "| llava_hf (org/model-a) | 75.0 | 25.0 | — | — |" in md
    assert "| ViT-B-32 (openai) [clip mcq] | 87.5 | 12.5 | 50.0 | — |" in md
    rows = csv_rows(report["out"] / "subset.csv")
    assert {
        "model": "llava_hf (org/model-a)",
        "dataset": "imagenet",
        "part": "in",
        "n": "4",
        "accuracy": "0.7500",
    } in rows


def test_spearman_is_one_on_a_monotone_example(report):
    rows = {(r["model"], r["dataset"]): r for r in csv_rows(report["out"] / "spearman.csv")}
    clip = rows[("ViT-B-32 (openai) [clip mcq]", "imagenet")]
    assert (clip["classes"], clip["rho"], clip["classes_without_frequency"]) == ("4", "1.0000", "0")
    assert float(clip["p"]) < 1e-6
    assert rows[("llava_hf (org/model-a)", "imagenet")]["classes"] == "4"


def test_spearman_reads_a_csv_with_header(runs, tmp_path):
    frequencies = tmp_path / "freq.csv"
    frequencies.write_text("class,count\ntench,3\ngoldfish,20\ngreat white shark,500\ntiger shark,1000\n")
    write_report([runs["clip"]], tmp_path / "out", frequencies=frequencies, figures=False, echo=None)
    rows = csv_rows(tmp_path / "out" / "spearman.csv")
    assert [r["rho"] for r in rows if r["dataset"] == "imagenet"] == ["-1.0000"]


# ---------------------------------------------------------------- figures


@pytest.mark.parametrize("stem", ["bars", "scatter"])
def test_figures_are_valid_png_and_svg(report, stem):
    png = (report["out"] / f"{stem}.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    root = ElementTree.parse(report["out"] / f"{stem}.svg").getroot()
    assert root.tag.endswith("svg")
    width = float(root.get("width").removesuffix("pt"))
    assert 200 <= width <= 7 * 72 + 1  # paper size: at most 7 in wide
    if stem == "bars":
        assert "InternVL2-8B" in (report["out"] / "bars.svg").read_text()  # text kept as text (svg.fonttype none)


# ---------------------------------------------------------------- the built-in food subset and the CLI


def test_food_subset_is_the_papers_appendix_d():
    food = load_subset("food")
    assert (food.inside, food.outside) == ("F", "NF")
    assert len(food.classes["imagenet"]) == 83 and len(food.classes["imagenetv2"]) == 86
    for key in ("imagenet", "imagenetv2"):
        names = [name.casefold() for name in DATASETS[key].classnames]
        assert all(names.count(name) == 1 for name in food.classes[key]), key


def test_cli_report_prints_table_and_fails_cleanly(runs, tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    ok = subprocess.run(
        [
            *CLSBENCH,
            "report",
            str(runs["vlmeval"]),
            "--output-dir",
            str(tmp_path / "r"),
            "--no-figures",
            "--rename",
            "InternVL2-8B=InternVL2 (8B)",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "| InternVL2 (8B) | 50.0† | — | — | 80.0 |" in ok.stdout  # † IMN scored from 2 prediction rows
    assert "Missing datasets: InternVL2 (8B): IMNv2, ONet, CUB, GLMK, Logo, Flower, SCar" in ok.stdout
    food = subprocess.run(
        [*CLSBENCH, "report", str(runs["vlmeval"]), "--output-dir", str(tmp_path / "f"), "--subset", "food"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert food.returncode == 0, food.stderr
    assert (tmp_path / "f" / "subset.md").is_file()
    empty = subprocess.run(
        [*CLSBENCH, "report", str(tmp_path), "--output-dir", str(tmp_path / "e")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert empty.returncode == 2 and "no results found" in empty.stderr


def test_real_clip_writer_output_is_read(tmp_path):
    """The summary and predictions exactly as clsbench.clip_baselines writes them."""
    results = pytest.importorskip("clsbench.clip_baselines.results")
    settings = results.RunSettings(model="ViT-L-14", pretrained="openai", run_label="ViT-L-14__openai")
    run_dir = tmp_path / "clip" / settings.run_name
    records = {
        str(i): results.prediction_record(str(i), label, label if ok else 0, None, None)
        for i, (label, ok) in enumerate([(1, 1), (1, 0), (2, 1), (2, 1)])
    }
    results.PredictionLog(results.predictions_path(run_dir, "logo")).append(records.values())
    results.write_json_atomic(
        results.summary_path(run_dir, "logo"), results.summarize(settings, "logo", records, NAMES["logo"])
    )
    table = write_report([tmp_path / "clip"], tmp_path / "out", figures=False, echo=None)
    assert "| ViT-L-14 (openai) [clip mcq] | — | — | — | — | — | — | — | 75.0† |" in table  # 4 of Logo's 500
    rows = {r["class"]: r for r in csv_rows(tmp_path / "out" / "per_class.csv")}
    assert (rows["Adidas"]["n"], rows["Adidas"]["correct"], rows["Anta"]["accuracy"]) == ("2", "1", "1.0000")


def test_vlmeval_xlsx_predictions_keep_class_names_as_text(tmp_path):
    """VLMEvalKit's default prediction format is xlsx; empty option cells end the option list."""
    import pandas as pd

    run_dir = tmp_path / "work" / "Qwen2-VL-7B-Instruct" / "T20260110-101010"
    run_dir.mkdir(parents=True)
    rows = vlmeval_rows("logo", [(0, [1, 2], "A"), (1, [3, 4, 5], "Answer: B"), (1, [3, 4, 5], "A")])
    pd.DataFrame(rows).to_excel(run_dir / "Qwen2-VL-7B-Instruct_ClsBench_logo.xlsx", index=False)
    write_report([tmp_path / "work"], tmp_path / "out", figures=False, echo=None)
    per_class = {r["class"]: (r["n"], r["correct"]) for r in csv_rows(tmp_path / "out" / "per_class.csv")}
    assert per_class == {"Adidas": ("1", "1"), "Kappa": ("2", "1")}
    table = (tmp_path / "out" / "table.md").read_text()
    assert "| Qwen2-VL-7B-Instruct | — | — | — | — | — | — | — | 66.7† |" in table


def test_duplicate_imagenet_names_stay_apart(tmp_path):
    """ImageNet's two "crane" classes (bird 134, machine 517): per-class rows keyed as clsbench clip keys them."""
    write_lmms_run(tmp_path / "lmms", "org/m", "20260101_000000", {"imagenet": 0.5}, {"imagenet": [(134, 1), (517, 0)]})
    write_report([tmp_path / "lmms"], tmp_path / "out", figures=False, echo=None)
    per_class = {r["class"]: r["correct"] for r in csv_rows(tmp_path / "out" / "per_class.csv")}
    assert per_class == {"crane [134]": "1", "crane [517]": "0"}


def test_vlmeval_files_as_clsbench_vlmeval_names_them(tmp_path):
    """tasks/vlmeval.py names the dataset like the lmms-eval task and adds category / unparseable columns."""
    import pandas as pd

    vlmeval = pytest.importorskip("clsbench.tasks.toolkits.vlmeval.names")
    data = vlmeval.vlmeval_name("logo")
    run_dir = tmp_path / "work" / "MiniCPM-V-2_6" / "T20260110-101010"
    run_dir.mkdir(parents=True)
    acc_csv = (
        "split,Overall,fine-grained,unparseable_rate\ntest,0.5,0.5,0.25\n"  # report_acc's columns, as it writes them
    )
    (run_dir / f"MiniCPM-V-2_6_{data}_acc.csv").write_text(acc_csv)
    rows = vlmeval_rows("logo", [(0, [1, 2], "A"), (1, [3, 4], "I'd say A")])
    pd.DataFrame([{**row, "category": "fine-grained", "split": "test"} for row in rows]).to_excel(
        run_dir / f"MiniCPM-V-2_6_{data}.xlsx", index=False
    )
    pd.DataFrame([{"index": 0, "hit": 1}]).to_excel(
        run_dir / f"MiniCPM-V-2_6_{data}{vlmeval.RESULT_SUFFIX}.xlsx", index=False
    )
    table = write_report([tmp_path / "work"], tmp_path / "out", figures=False, echo=None)
    assert "| MiniCPM-V-2_6 | — | — | — | — | — | — | — | 50.0† |" in table
    per_class = {r["class"]: (r["n"], r["correct"]) for r in csv_rows(tmp_path / "out" / "per_class.csv")}
    assert per_class == {"Adidas": ("1", "1"), "Kappa": ("1", "0")}
