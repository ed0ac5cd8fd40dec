"""Results you can trust and compare: rows per (model, protocol), partial and conflicting cells, the leaderboard
file, the paper beside every row, CLIP_benchmark's outputs, figures a reader trusts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clsbench.tasks.protocol.catalog import task_name
from clsbench.tasks.protocol.paper import mllm_row, table2
from clsbench.tasks.protocol.registry import DATASETS, dataset_for_name
from clsbench.tasks.report.build import write_report
from clsbench.tasks.report.records import ReportError


def lmms_results(
    folder: Path,
    stamp: str,
    model_args: str,
    scores: dict[str, float],
    *,
    n: int | None = None,
    effective: int | None = None,
    model: str = "clsbench_hf",
    suffix: str = "",
) -> Path:
    """An lmms-eval results file as 0.7.3 writes it: results, n-samples, config. ``n``: the split's size (default:
    the paper's full split, the registry's expected_size); ``effective``: the samples scored (a --limit run)."""
    folder.mkdir(parents=True, exist_ok=True)
    results = {
        task_name(key, suffix): {"accuracy,none": value, "accuracy_stderr,none": 0.1, "unparseable_rate,none": 0.0}
        for key, value in scores.items()
    }
    sizes = {key: n or DATASETS[key].expected_size for key in scores}
    counts = {task_name(key, suffix): {"original": sizes[key], "effective": effective or sizes[key]} for key in scores}
    path = folder / f"{stamp}_results.json"
    path.write_text(
        json.dumps(
            {
                "results": results,
                "n-samples": counts,
                "date": stamp,
                "config": {
                    "model": model,
                    "model_args": model_args,
                    "limit": None if effective is None else float(effective),
                },
            }
        )
    )
    return path


def report(runs, tmp_path, **kwargs) -> tuple[str, str]:
    echoed: list[str] = []
    table = write_report(
        [Path(r) for r in runs], tmp_path / kwargs.pop("out", "out"), figures=False, echo=echoed.append, **kwargs
    )
    return table, "\n".join(echoed)


def row(table: str, name: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_score_generate_and_limit_runs_of_one_checkpoint_are_honest_rows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    runs = tmp_path / "runs" / "m"
    six = {key: 0.5 for key, spec in DATASETS.items() if spec.group == "fine-grained"}
    lmms_results(runs, "20260101_000000", "pretrained=./ckpt,mode=score", {**six, "food101": 0.125})
    lmms_results(runs, "20260102_000000", "pretrained=./ckpt,mode=generate", {"food101": 0.0})
    lmms_results(
        runs, "20260103_000000", f"pretrained={tmp_path / 'ckpt'},mode=score", {"food101": 0.0}, effective=1
    )  # a --limit 1 run of the same checkpoint, given by its absolute path
    table, echo = report([tmp_path / "runs"], tmp_path)
    score, generate = row(table, "clsbench_hf (ckpt) [score]"), row(table, "clsbench_hf (ckpt)")
    food = list(DATASETS).index("food101")
    assert score[food] == "12.5" and generate[food] == "0.0"  # three runs, two protocols: nothing replaced
    assert score[-1] == "43.8"  # the complete Food cell stays in the average; the partial run changes nothing
    assert "clsbench_hf (ckpt): IMN, IMNv2, ONet, C101, CUB, GLMK, Logo, Flower, SCar;" in echo  # generate: Food only
    assert len([line for line in table.splitlines() if "(ckpt)" in line]) == 2  # ./ckpt and /abs/ckpt: one model

    lmms_results(runs, "20260104_000000", "pretrained=./ckpt,mode=generate", {"logo": 0.0}, effective=1)
    table, echo = report([tmp_path / "runs"], tmp_path, out="out2")
    assert row(table, "clsbench_hf (ckpt)")[list(DATASETS).index("logo")] == "0.0 (n=1/500)"
    assert "Logo partial (n=1 of 500)" in echo and "Missing datasets: none" not in echo


def test_clsbench_vllm_runs_are_labelled_with_their_real_mode(tmp_path):
    """clsbench_vllm takes mode= as clsbench_hf does; clsbench 0.3 labelled every vLLM run generate (issue 29)."""
    runs = tmp_path / "runs" / "m"
    lmms_results(runs, "20260101_000000", "pretrained=org/m,mode=loglik", {"food101": 0.5}, model="clsbench_vllm")
    lmms_results(runs, "20260102_000000", "pretrained=org/m,mode=score", {"food101": 0.25}, model="clsbench_vllm")
    lmms_results(runs, "20260103_000000", "pretrained=org/m", {"food101": 0.75}, model="clsbench_vllm")
    table, _ = report([tmp_path / "runs"], tmp_path)
    food = list(DATASETS).index("food101")
    names = [line.split("|")[1].strip() for line in table.splitlines() if "(org/m)" in line]
    assert len(names) == 3, names
    loglik = next(name for name in names if "[loglik" in name)
    assert row(table, loglik)[food] == "50.0"
    assert row(table, next(name for name in names if name.endswith("[score]")))[food] == "25.0"
    assert row(table, next(name for name in names if "[" not in name))[food] == "75.0"  # generate: the default


def test_partial_cells_stay_out_of_group_averages_unless_allowed(tmp_path):
    runs = tmp_path / "runs" / "m"
    fine = [key for key, spec in DATASETS.items() if spec.group == "fine-grained"]
    lmms_results(runs, "20260101_000000", "pretrained=org/m", {key: 0.5 for key in fine[:-1]})
    lmms_results(runs, "20260102_000000", "pretrained=org/m", {fine[-1]: 1.0}, effective=2)
    table, _ = report([tmp_path / "runs"], tmp_path)
    assert row(table, "clsbench_hf (org/m)")[-1] == "—"
    table, _ = report([tmp_path / "runs"], tmp_path, out="allowed", allow_partial=True)
    assert row(table, "clsbench_hf (org/m)")[-1] == "58.3"


def test_two_different_complete_results_for_one_cell_are_a_reported_conflict(tmp_path):
    runs = tmp_path / "runs" / "m"
    first = lmms_results(runs, "20260101_000000", "pretrained=org/m,mode=score", {"logo": 0.5})
    second = lmms_results(runs, "20260102_000000", "pretrained=org/m,mode=score", {"logo": 0.25})
    table, echo = report([tmp_path / "runs"], tmp_path)
    assert row(table, "clsbench_hf (org/m) [score]")[list(DATASETS).index("logo")] == "—"
    assert "conflict: clsbench_hf (org/m) [score] on Logo" in echo and str(first) in echo and str(second) in echo
    lines = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted(line["accuracy"] for line in lines if line["conflict"]) == [0.25, 0.5]


def test_variants_and_name_sets_are_rows_of_their_own(tmp_path):
    runs = tmp_path / "runs" / "m"
    lmms_results(runs, "20260101_000000", "pretrained=org/m", {"imagenet": 0.5})
    lmms_results(runs, "20260102_000000", "pretrained=org/m", {"imagenet": 0.75}, suffix="_4opt")
    lmms_results(runs, "20260103_000000", "pretrained=org/m", {"imagenet": 0.25}, suffix="_openai")
    table, _ = report([tmp_path / "runs"], tmp_path)
    assert row(table, "clsbench_hf (org/m)")[0] == "50.0"
    assert row(table, "clsbench_hf (org/m) [4 options]")[0] == "75.0"
    assert row(table, "clsbench_hf (org/m) [openai names]")[0] == "25.0"


def test_the_leaderboard_file_round_trips_to_the_same_table(tmp_path):
    runs = tmp_path / "runs" / "m"
    lmms_results(
        runs,
        "20260101_000000",
        "pretrained=Qwen/Qwen2-VL-7B-Instruct,mode=score",
        {key: 0.9 for key in DATASETS},
        n=100,
    )
    lmms_results(runs, "20260102_000000", "pretrained=org/m", {"logo": 0.3}, effective=4)
    table, _ = report([tmp_path / "runs"], tmp_path, show="ci")
    leaderboard = tmp_path / "out" / "results.jsonl"
    entries = [json.loads(line) for line in leaderboard.read_text().splitlines()]
    first = next(e for e in entries if e["dataset"] == "imagenet")
    assert first["n"] == 100 and first["stderr"] == 0.1 and first["protocol"]["mode"] == "score"
    assert first["ci95"][0] < 0.9 < first["ci95"][1] and first["paper_row"] == "Qwen2-VL"
    assert {"model_id", "toolkit", "unparseable_rate", "versions", "source", "partial"} <= set(first)
    # 100 of ImageNet's 50,000: complete on its copy, a subset of the paper's split; the mark survives the round trip
    assert first["split_subset"] is True and first["full_split"] == 50_000 and first["partial"] is False
    again, _ = report([leaderboard], tmp_path, out="again", show="ci")
    assert again == table
    assert "90.0† [82.6, 94.5]" in table  # the Wilson 95 % interval of 90/100


def test_reference_paper_rows_and_deltas(tmp_path):
    runs = tmp_path / "runs" / "m"
    lmms_results(runs, "20260101_000000", "pretrained=Qwen/Qwen2-VL-7B-Instruct", {"imagenet": 0.9, "food101": 0.9})
    table, _ = report([tmp_path / "runs"], tmp_path, reference="paper")
    assert row(table, "Qwen2-VL (paper)")[:2] == ["97.4", "96.8"] and row(table, "OpenAI CLIP (paper)")[0] == "96.3"
    assert len([line for line in table.splitlines() if "(paper)" in line]) == 16
    delta = (tmp_path / "out" / "delta.md").read_text()
    line = next(line for line in delta.splitlines() if line.startswith("| clsbench_hf (Qwen/Qwen2-VL-7B-Instruct)"))
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert cells[1] == "Qwen2-VL" and cells[2] == "-7.4" and cells[2 + list(DATASETS).index("food101")] == "-6.2"
    with pytest.raises(ReportError, match="only reference is 'paper'"):
        report([tmp_path / "runs"], tmp_path, out="x", reference="imagenet")


def test_reference_rows_show_table2_as_printed_and_only_our_rows_are_averaged(tmp_path):
    # Source: P1 (Liu et al., arXiv 2412.16418) Table 2, transcribed in tasks/data/paper/table2.csv. Recomputed
    # from the printed cells, these five averages land 0.1 away from the printed ones (clsbench 0.3 showed them).
    runs = tmp_path / "runs" / "m"
    scores = {key: 0.9 for key, spec in DATASETS.items() if spec.group == "general" and spec.in_paper}
    lmms_results(runs, "20260101_000000", "pretrained=Qwen/Qwen-VL-Chat", scores)
    table, _ = report([tmp_path / "runs"], tmp_path, reference="paper")
    columns = ["IMN", "IMNv2", "ONet", "C101", "General Avg.", "CUB", "Food", "GLMK", "Logo", "Flower", "SCar"]
    header = next(line for line in table.splitlines() if line.startswith("| Model |"))
    names = [cell.strip() for cell in header.strip("|").split("|")][1:]
    general, fine = names.index("General Avg."), names.index("Fine-grained Avg.")
    printed = {  # (row, column): as printed, recomputed
        ("OpenCLIP ConvNeXt-XXL", general): "93.9",  # recomputed 93.8
        ("OpenCLIP ViT-bigG", general): "93.9",  # recomputed 94.0
        ("SigLIP", general): "95.1",  # recomputed 95.2
        ("SigLIP", fine): "93.0",  # recomputed 92.9
        ("Qwen-VL", fine): "68.5",  # recomputed 68.4
    }
    for (name, column), value in printed.items():
        assert row(table, f"{name} (paper)")[column] == value, (name, names[column])
    for name, entry in table2().items():  # every reference cell is the printed number
        cells = row(table, f"{name} (paper)")
        assert cells[general] == f"{entry['averages']['general']:.1f}"
        assert cells[fine] == f"{entry['averages']['fine-grained']:.1f}"
    ours = row(table, "clsbench_hf (Qwen/Qwen-VL-Chat)")
    assert ours[general] == "90.0" and ours[fine] == "—"  # our own cells, averaged
    delta = (tmp_path / "out" / "delta.md").read_text()
    line = next(line for line in delta.splitlines() if line.startswith("| clsbench_hf (Qwen/Qwen-VL-Chat)"))
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert cells[2 + general] == f"{90.0 - 85.2:+.1f}"  # ours minus the printed 85.2
    assert columns[0] == names[0]


def test_delta_compares_each_row_with_the_paper_per_protocol(tmp_path):
    """A [score] row is never set beside the paper's generate-mode numbers as if it were a reproduction (issue 29)."""
    runs = tmp_path / "runs" / "m"
    hub = "pretrained=Qwen/Qwen2-VL-7B-Instruct"
    lmms_results(runs, "20260101_000000", hub + ",mode=generate", {"imagenet": 0.9})
    lmms_results(runs, "20260102_000000", hub + ",mode=score", {"imagenet": 0.8})
    report([tmp_path / "runs"], tmp_path, reference="paper")
    delta = (tmp_path / "out" / "delta.md").read_text()
    paper_part, other = delta.split("## Another protocol: score", 1)
    assert (
        "| clsbench_hf (Qwen/Qwen2-VL-7B-Instruct) | Qwen2-VL | -7.4" in paper_part.split("## The paper's protocol")[1]
    )
    assert (
        "[score]" not in paper_part and "| clsbench_hf (Qwen/Qwen2-VL-7B-Instruct) [score] | Qwen2-VL | -17.4" in other
    )
    assert "not the paper's" in other.splitlines()[0]
    # GLDv2's subset is not public and Caltech-101's split is a hash rule: said where a user compares.
    assert "GLMK" in delta and "C101" in delta and "cannot match the paper exactly" in delta
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    assert "Two cells cannot match the paper exactly" in readme and "hash rule" in readme


def test_table2_is_the_papers_and_the_mapping_covers_its_mllms():
    rows = table2()
    assert len(rows) == 16 and rows["Qwen2-VL"]["accuracy"]["imagenet"] == pytest.approx(0.974)
    for row_ in rows.values():  # the averages recompute from the cells (to 0.05, as printed)
        for group in ("general", "fine-grained"):
            keys = [k for k, spec in DATASETS.items() if spec.group == group and spec.in_paper]
            assert len([k for k in keys if k in row_["accuracy"]]) == len(keys)
    mllms = {name for name, row_ in rows.items() if row_["kind"] == "mllm"}
    assert {
        mllm_row(hub)
        for hub in (
            "Qwen/Qwen2-VL-7B-Instruct",
            "llava-hf/llava-1.5-7b-hf",
            "openbmb/MiniCPM-V-2_6",
            "OpenGVLab/InternVL2-8B",
            "microsoft/Phi-3-vision-128k-instruct",
            "deepseek-ai/deepseek-vl-7b-chat",
            "Qwen/Qwen-VL-Chat",
            "llava-hf/llava-v1.6-vicuna-7b-hf",
            "openbmb/MiniCPM-Llama3-V-2_5",
            "llava-hf/llava-onevision-qwen2-7b-ov-hf",
        )
    } == mllms


def test_clip_benchmark_results_are_read_as_full_mode_rows(tmp_path):
    folder = tmp_path / "cb"
    folder.mkdir()
    dump = {
        "dataset": "cars",
        "model": "ViT-B-32",
        "pretrained": "openai",
        "task": "zeroshot_classification",
        "metrics": {"acc1": 0.6, "acc5": 0.9, "mean_per_class_recall": 0.58},
        "language": "en",
    }
    (folder / "cars_ViT-B-32_openai.json").write_text(json.dumps(dump))  # clip_benchmark eval --output's layout
    table, _ = report([folder], tmp_path)
    assert row(table, "ViT-B-32 (openai) [CLIP_benchmark full]")[list(DATASETS).index("stanfordcars")] == "60.0"


@pytest.mark.parametrize(
    "name,key",
    [
        ("cars", "stanfordcars"),
        ("flowers", "flowers102"),
        ("imagenet1k", "imagenet"),
        ("SCar", "stanfordcars"),
        ("ClsBench_imagenet_openai", "imagenet"),
    ],
)
def test_other_tools_names_are_aliases(name, key):
    from clsbench.clip_baselines.run import parse_datasets

    assert dataset_for_name(name) == key
    assert parse_datasets(f"food101 {name}") == ["food101", key] and parse_datasets([f"{name},logo"]) == [key, "logo"]


def test_figures_show_chance_and_zero_and_keep_colours(tmp_path):
    runs = tmp_path / "runs" / "m"
    lmms_results(runs, "20260101_000000", "pretrained=org/m", {key: 0.0 for key in DATASETS})
    write_report([tmp_path / "runs"], tmp_path / "out", scatter=True, echo=None, reference="paper")
    svg = (tmp_path / "out" / "bars.svg").read_text()
    assert "chance" in svg and "clsbench_hf (org/m)" in svg
    from clsbench.tasks.report.figures import _series_styles, chance_levels
    from clsbench.tasks.report.readers import collect

    assert chance_levels()[list(DATASETS).index("logo")] == pytest.approx(10.0)
    assert chance_levels()[0] == pytest.approx(100 / 26)
    models = collect([tmp_path / "runs"], None, [], reference="paper")
    styles = _series_styles(models)
    assert len({str(style) for style in styles}) == len(styles)  # one style per row, shared by both figures


def test_api_models_are_named_by_their_model_not_their_arguments(tmp_path):
    runs = tmp_path / "runs" / "api"
    lmms_results(
        runs,
        "20260101_000000",
        "model_version=gpt-4o-2024-08-06,base_url=http://127.0.0.1:8000/v1,max_retries=3",
        {"logo": 0.9},
        model="openai_compatible",
    )
    table, _ = report([tmp_path / "runs"], tmp_path)
    assert "| openai_compatible (gpt-4o-2024-08-06) |" in table and "base_url" not in table


def test_show_n_and_ci_together_and_the_csv_stays_numeric(tmp_path):
    """Issue 26: `--show ci` wrote "12.5 [2.2, 47.1]" into table.csv and `--show n --show ci` kept only the last.
    Both now apply; the Markdown shows them in the cell, the CSV in separate numeric columns."""
    import csv

    from clsbench.tasks.cli.main import main

    runs = tmp_path / "runs" / "m"
    lmms_results(runs, "20260101_000000", "pretrained=org/m", {"imagenet": 0.9}, n=100)
    lmms_results(runs, "20260102_000000", "pretrained=org/m", {"logo": 0.25}, effective=4)  # partial: 4 of 500
    out = tmp_path / "out"
    argv = ["report", str(tmp_path / "runs"), "--output-dir", str(out), "--no-figures", "--show", "n", "--show", "ci"]
    assert main(argv) == 0
    assert "| 90.0† (n=100) [82.6, 94.5] |" in (out / "table.md").read_text()  # 100 of the paper's 50,000
    (line,) = csv.DictReader((out / "table.csv").open())
    assert (line["IMN_split_subset"], line["IMN_full_split"], line["Logo_split_subset"]) == ("true", "50000", "false")
    assert (line["IMN"], line["IMN_ci_low"], line["IMN_ci_high"], line["IMN_n"]) == ("90.0", "82.6", "94.5", "100")
    assert (line["Logo"], line["Logo_n"], line["Logo_n_expected"]) == ("25.0", "4", "500")
    numbers = [
        value
        for key, value in line.items()
        if key not in ("Model", "Type", "Toolkit") and not key.endswith("_split_subset") and value
    ]
    assert all(float(value) == float(value) for value in numbers)  # every filled cell parses as a number
    with pytest.raises(ReportError, match="--show x: choose n or ci"):
        write_report([tmp_path / "runs"], tmp_path / "bad", show=["n", "x"], echo=None)


def test_worst_classes_leave_the_papers_rows_out_saying_why(tmp_path):
    """Issue 26: worst_classes.md told each of the paper's 16 rows to "rerun with --log_samples"."""
    lmms_results(tmp_path / "runs" / "m", "20260101_000000", "pretrained=org/m", {"imagenet": 0.5})
    report([tmp_path / "runs"], tmp_path, reference="paper")
    worst = (tmp_path / "out" / "worst_classes.md").read_text()
    assert "(paper)" not in worst and worst.count("rerun with `--log_samples`") == 1  # our row only
    assert "The paper's 16 reference rows (`--reference paper`) are left out" in worst


def test_delta_says_which_rows_have_no_paper_row_and_why(tmp_path):
    """Issue 26: the demo's delta.md was an empty table. A row that matches no paper row is named with the model
    identity that did not match, and the file says plainly that there is nothing to subtract."""
    runs = tmp_path / "runs" / "m"
    lmms_results(runs, "20260101_000000", "pretrained=org/tiny", {"imagenet": 0.5})
    lmms_results(runs, "20260102_000000", "pretrained=Qwen/Qwen2-VL-7B-Instruct,mode=score", {"imagenet": 0.9})
    report([tmp_path / "runs"], tmp_path, reference="paper")
    delta = (tmp_path / "out" / "delta.md").read_text()
    assert "No row here is one of the paper's models under its protocol, so there is nothing to subtract" in delta
    assert (
        "## Another protocol: score" in delta
        and "| clsbench_hf (Qwen/Qwen2-VL-7B-Instruct) [score] | Qwen2-VL" in delta
    )
    unmatched = delta.split("## Rows with no paper row")[1]
    assert "- clsbench_hf (org/tiny): model `" in unmatched and "org/tiny" in unmatched and "Qwen" not in unmatched


def _figure_models(tmp_path):
    from clsbench.tasks.report.readers import collect
    from clsbench.tasks.report.tables import table_rows

    runs = tmp_path / "runs" / "m"
    lmms_results(runs, "20260101_000000", "pretrained=org/m", {key: 0.5 for key in DATASETS}, n=40)
    lmms_results(runs, "20260102_000000", "pretrained=org/m,mode=score", {key: 0.25 for key in DATASETS}, n=40)
    models = collect([tmp_path / "runs"], None, [], reference="paper")
    return models, table_rows(models)


def test_bars_are_our_rows_with_intervals_and_the_papers_rows_are_marks(tmp_path):
    """Issue 26: bars.png drew 18 bars per dataset, the paper's 16 as pastel outlines, and our MLLM row in the
    blue of "OpenAI CLIP (paper)". Now: our rows are bars with their 95 % interval and value; each paper row is one
    mark per dataset, no bar; every colour is from the colour-blind-safe palette; no mark wears our bars' colour."""
    from matplotlib.colors import to_hex
    from matplotlib.container import BarContainer

    from clsbench.tasks.report.figures import PALETTE, bar_chart
    from clsbench.tasks.report.records import REFERENCE

    models, rows = _figure_models(tmp_path)
    ours = [model.name for model in models if model.kind != REFERENCE]
    papers = [model.name for model in models if model.kind == REFERENCE]
    assert len(ours) == 2 and len(papers) == 16
    axes = bar_chart(models, rows).axes[0]
    bars = {container.get_label(): container for container in axes.containers if isinstance(container, BarContainer)}
    assert set(bars) == set(ours)  # no paper row has a bar patch
    colours = {}
    for name in ours:
        container = bars[name]
        assert len(container.patches) == 12 and container.errorbar is not None  # ten datasets and two averages
        (segments,) = container.errorbar.lines[2]
        spans = [segment[:, 1] for segment in segments.get_segments()]
        score = name.endswith("[score]")
        assert spans[0].tolist() == pytest.approx([14.2, 40.2] if score else [35.2, 64.8], abs=0.05)  # Wilson, n=40
        colours[name] = to_hex(container.patches[0].get_facecolor())
    labels = [text.get_text() for text in axes.texts]
    assert labels.count("50.0") == 12 and labels.count("25.0") == 12  # a value label on every bar
    marks = {line.get_label(): line for line in axes.lines if line.get_label() in papers}
    assert set(marks) == set(papers)
    assert all(len(line.get_xdata()) == 12 and line.get_linestyle() == "None" for line in marks.values())
    styles = {(to_hex(line.get_markerfacecolor()), line.get_marker()) for line in marks.values()}
    assert len(styles) == 16  # one colour-and-marker pair per paper row
    used = set(colours.values()) | {colour for colour, _ in styles}
    assert used <= {colour.lower() for colour in PALETTE} and len(set(colours.values())) == 2
    assert not set(colours.values()) & {colour for colour, _ in styles}


def test_scatter_numbers_do_not_overlap_and_keep_each_rows_colour(tmp_path):
    """Issue 26: scatter.png's numbers overlapped where the paper's CLIP rows cluster near (95, 90)."""
    from matplotlib.colors import to_hex
    from matplotlib.text import Text

    from clsbench.tasks.report.figures import _series_styles, scatter_chart

    models, rows = _figure_models(tmp_path)
    figure = scatter_chart(models, rows)
    axes = figure.axes[0]
    renderer = figure.canvas.get_renderer()
    for text in axes.texts:
        text.update_positions(renderer)
    boxes = [Text.get_window_extent(text, renderer) for text in axes.texts]  # the numbers, not leader lines
    assert len(boxes) == 18
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]
    by_name = {collection.get_label().split("  ", 1)[1]: collection for collection in axes.collections}
    for model, style in zip(models, _series_styles(models)):  # the bars' colour for every row
        assert to_hex(by_name[model.name].get_facecolor()[0]) == style["color"].lower()


def vlmeval_run(work: Path, model: str, data: str, overall: float, stamp: str = "T20260105-101010") -> Path:
    """A VLMEvalKit work dir as run.py (commit e8e78f0) leaves it: ``<work>/<model>/T<%Y%m%d-%H%M%S>/`` holding
    ``<model>_<data>_acc.csv`` (run folder: build_eval_id, vlmeval/smp/file.py:453-454, and run.py:669; file name:
    get_intermediate_file_path, vlmeval/smp/file.py:687, from the predictions' ``<model>_<data>.<fmt>`` of
    get_pred_file_path, vlmeval/smp/file.py:208-219), linked into ``<work>/<model>/`` (run.py:995-1010)."""
    run = work / model / stamp
    run.mkdir(parents=True, exist_ok=True)
    acc = run / f"{model}_{data}_acc.csv"
    acc.write_text(f"split,Overall,unparseable_rate\nnone,{overall},0.0\n", "utf-8")
    link = work / model / acc.name
    link.unlink(missing_ok=True)
    link.symlink_to(acc)
    return acc


def test_the_openai_name_set_from_vlmeval_is_its_own_row(tmp_path):
    """``ClsBench_imagenet_openai`` results were ignored ("no ... results for our datasets", issue 28)."""
    vlmeval_run(tmp_path / "work", "clsbench_qwen2-vl-7b-instruct", "ClsBench_imagenet_openai", 0.75)
    vlmeval_run(tmp_path / "work", "clsbench_qwen2-vl-7b-instruct", "ClsBench_imagenet", 0.5)
    table, echo = report([tmp_path / "work"], tmp_path)
    assert row(table, "clsbench_qwen2-vl-7b-instruct [openai names]")[0] == "75.0"
    assert row(table, "clsbench_qwen2-vl-7b-instruct")[0] == "50.0"
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["protocol"]["class_names"] for r in records) == ["openai", "paper"]


def test_vlmeval_rows_take_their_mode_from_our_model_names_and_meet_the_paper_row(tmp_path):
    """``clsbench_<slug>-score`` is the score protocol, not the paper's; ``clsbench_<slug>`` is matched to Table 2
    (only VLMEvalKit's own ``Qwen2-VL-7B-Instruct`` name was, issue 28)."""
    work = tmp_path / "work"
    vlmeval_run(work, "clsbench_qwen2-vl-7b-instruct", "ClsBench_imagenet", 0.9)
    vlmeval_run(work, "clsbench_qwen2-vl-7b-instruct-score", "ClsBench_imagenet", 0.8)
    table, _ = report([work], tmp_path, reference="paper")
    assert row(table, "clsbench_qwen2-vl-7b-instruct [score]")[0] == "80.0"
    delta = (tmp_path / "out" / "delta.md").read_text()
    paper_part, other = delta.split("## Another protocol: score", 1)
    assert "| clsbench_qwen2-vl-7b-instruct | Qwen2-VL | -7.4" in paper_part
    assert "[score]" not in paper_part and "| clsbench_qwen2-vl-7b-instruct [score] | Qwen2-VL | -17.4" in other


def test_one_model_through_lmms_eval_and_vlmeval_is_one_row_per_protocol_naming_the_toolkits(tmp_path):
    hub = "pretrained=Qwen/Qwen2-VL-7B-Instruct"
    lmms_results(tmp_path / "runs" / "m", "20260101_000000", hub + ",mode=score", {"imagenet": 0.8, "logo": 0.5})
    lmms_results(tmp_path / "runs" / "m", "20260102_000000", hub + ",mode=generate", {"imagenet": 0.9})
    work = tmp_path / "work"
    vlmeval_run(work, "clsbench_qwen2-vl-7b-instruct-score", "ClsBench_imagenet", 0.8)  # agrees with lmms-eval
    vlmeval_run(work, "clsbench_qwen2-vl-7b-instruct-score", "ClsBench_food101", 0.7)  # only through VLMEvalKit
    vlmeval_run(work, "clsbench_qwen2-vl-7b-instruct", "ClsBench_imagenet", 0.9)
    vlmeval_run(work, "Qwen2-VL-7B-Instruct", "ClsBench_imagenet", 0.85)  # VLMEvalKit's own wrapper: another model
    table, echo = report([tmp_path / "runs", work], tmp_path, reference="paper")
    ours = [line.split("|")[1].strip() for line in table.splitlines() if "Qwen2-VL-7B-Instruct" in line]
    assert sorted(ours) == [
        "Qwen2-VL-7B-Instruct",
        "clsbench_hf (Qwen/Qwen2-VL-7B-Instruct) [lmms-eval + vlmeval]",
        "clsbench_hf (Qwen/Qwen2-VL-7B-Instruct) [score] [lmms-eval + vlmeval]",
    ]
    score = row(table, "clsbench_hf (Qwen/Qwen2-VL-7B-Instruct) [score] [lmms-eval + vlmeval]")
    columns = [c.strip() for c in next(x for x in table.splitlines() if x.startswith("| Model |")).split("|")[2:-1]]
    assert score[columns.index("IMN")] == "80.0" and score[columns.index("Food")] == "70.0"
    assert score[columns.index("Logo")] == "50.0" and "conflict" not in echo
    toolkits = {
        line.split(",")[0]: line.split(",")[2] for line in (tmp_path / "out" / "table.csv").read_text().splitlines()
    }
    assert toolkits["clsbench_hf (Qwen/Qwen2-VL-7B-Instruct) [score] [lmms-eval + vlmeval]"] == "lmms-eval + vlmeval"
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    food = next(r for r in records if r["dataset"] == "food101")
    assert food["toolkit"] == "vlmeval" and food["model_id"] == "clsbench_hf:Qwen/Qwen2-VL-7B-Instruct"
    delta = (tmp_path / "out" / "delta.md").read_text()
    assert "| clsbench_hf (Qwen/Qwen2-VL-7B-Instruct) [lmms-eval + vlmeval] | Qwen2-VL | -7.4" in delta
    # Two toolkits that disagree on one cell of one protocol: a conflict, both files named.
    vlmeval_run(work, "clsbench_qwen2-vl-7b-instruct", "ClsBench_imagenet", 0.6, stamp="T20260106-101010")
    _, echo = report([tmp_path / "runs", work], tmp_path, out="again")
    assert "conflict: clsbench_hf (Qwen/Qwen2-VL-7B-Instruct) [lmms-eval + vlmeval] on IMN" in echo


def test_the_report_reads_modes_by_the_grammar_our_vlmeval_models_are_registered_with():
    from clsbench.models.catalog import vlmeval_models
    from clsbench.tasks.protocol.catalog import checkpoint_slug, parse_vlmeval_model_name

    registered = vlmeval_models()
    assert {kwargs["mode"] for kwargs in registered.values()} == {"generate", "score"}
    for name, kwargs in registered.items():
        assert parse_vlmeval_model_name(name) == (checkpoint_slug(kwargs["model_path"]), kwargs["mode"]), name
    assert parse_vlmeval_model_name("Qwen2-VL-7B-Instruct") is None  # VLMEvalKit's own wrapper
    assert mllm_row("clsbench_llava-onevision-qwen2-7b-ov-hf-score") == "LLaVA-OV"
    assert mllm_row("clsbench_qwen3-vl-2b-instruct") is None  # not in the paper


def test_a_run_on_8_row_copies_is_never_called_complete_against_the_paper(tmp_path):
    """`clsbench demo` then `clsbench report`: runs on the 8-row fixture copies were "complete" (every cell plain,
    "partial": false, "Missing datasets: none (... complete)") beside the paper's rows. Partial stays relative to
    the copy (a --limit run); a copy smaller than the paper's split (the registry's expected_size) is marked as a
    subset of the split in the table, table.csv, results.jsonl, the Missing datasets line and delta.md."""
    import csv

    runs = tmp_path / "runs" / "m"
    hub = "pretrained=Qwen/Qwen2-VL-7B-Instruct"
    lmms_results(runs, "20260101_000000", hub, {key: 0.5 for key in DATASETS}, n=8)  # the demo's copies
    others = {key: 0.25 for key in DATASETS if key != "food101"}
    lmms_results(runs, "20260102_000000", hub + ",mode=score", others, n=8)
    lmms_results(runs, "20260103_000000", hub + ",mode=score", {"food101": 0.5}, n=8, effective=2)  # --limit 2
    table, echo = report([tmp_path / "runs"], tmp_path, reference="paper")
    out = tmp_path / "out"
    name = "clsbench_hf (Qwen/Qwen2-VL-7B-Instruct)"
    cells = row(table, name)
    assert cells[:10] == ["50.0†"] * 10 and cells[10:12] == ["50.0†", "50.0†"]  # averages kept, marked
    food = list(DATASETS).index("food101")
    assert row(table, name + " [score]")[food] == "50.0† (n=2/8)"  # a --limit run on the copy: partial and subset
    assert all("†" not in cell for cell in row(table, "Qwen2-VL (paper)"))
    assert "complete" not in echo.split("Missing datasets:")[1].splitlines()[0]
    missing = next(line for line in echo.splitlines() if line.startswith("Missing datasets:"))
    assert missing.startswith("Missing datasets: ") and "Food partial (n=2 of 8)" in missing
    assert (
        f"{name}: all 10 of the paper's (8 rows each), Pet (8 of 3,669 rows)" in missing
        and "subsets of the paper's splits" in missing
    )
    assert "note: † from a subset of the paper's split" in echo
    assert "Note: † from a subset of the paper's split" in (out / "table.md").read_text()
    lines = by_name(csv.DictReader((out / "table.csv").open()))
    ours, paper = lines[name], lines["Qwen2-VL (paper)"]
    assert (ours["Food"], ours["Food_n"], ours["Food_n_expected"], ours["Food_full_split"]) == (
        "50.0",
        "8",
        "8",
        "25250",
    )
    assert ours["Food_split_subset"] == ours["General Avg._split_subset"] == "true"
    assert paper["Food_split_subset"] == "false"
    entries = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    entry = next(e for e in entries if e["row"] == name and e["dataset"] == "food101")
    assert (entry["partial"], entry["split_subset"], entry["n_expected"], entry["full_split"]) == (
        False,
        True,
        8,
        25_250,
    )
    delta = (out / "delta.md").read_text()
    line = next(line for line in delta.splitlines() if line.startswith(f"| {name} | Qwen2-VL"))
    deltas = [cell.strip() for cell in line.strip("|").split("|")][2:]
    assert deltas[food] == f"not comparable† ({50.0 - 96.2:+.1f})" and all(
        "not comparable" in d for d in deltas[:12]
    )  # Pet: no paper number
    assert "† not comparable: these cells are from subsets of the paper's splits" in delta

    # the same runs on full splits: no mark anywhere, and "complete" is said again
    full = tmp_path / "full" / "m"
    lmms_results(full, "20260101_000000", hub, {key: 0.5 for key in DATASETS})
    table, echo = report([tmp_path / "full"], tmp_path, out="full_out")
    assert "†" not in table and "Missing datasets: none (every model has all 10 of the paper's, complete)" in echo
    (entry, *_) = [json.loads(line) for line in (tmp_path / "full_out" / "results.jsonl").read_text().splitlines()]
    assert (
        entry["split_subset"] is False and "Food_split_subset" not in (tmp_path / "full_out" / "table.csv").read_text()
    )


def by_name(lines) -> dict[str, dict[str, str]]:
    return {line["Model"]: line for line in lines}


def test_bar_labels_never_sit_on_the_papers_marks_and_a_zero_bar_draws_nothing(tmp_path):
    """The demo's bars.png: the vertical value labels stood above each error bar, so CUB's "0.0" sat on the paper's
    marks, and a 0.0 cell was drawn as a stub at 0.8 that read as about 1 %. Now each label is at the bar's base
    (inside it), clear of every paper mark, and a 0.0 cell has a bar of height 0 and nothing else but its label."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.container import BarContainer
    from matplotlib.text import Text

    from clsbench.tasks.report.figures import LABEL_BASE, bar_chart
    from clsbench.tasks.report.readers import collect
    from clsbench.tasks.report.records import REFERENCE
    from clsbench.tasks.report.tables import table_rows

    runs = tmp_path / "runs" / "m"
    zeros = {"cub200", "imagenet", "stanfordcars"}
    demo = {key: 0.0 if key in zeros else 0.125 for key in DATASETS}  # the demo's random-weight scores, 8 rows
    lmms_results(runs, "20260101_000000", "pretrained=org/tiny,mode=score", demo, n=8)
    lmms_results(runs, "20260102_000000", "pretrained=org/tiny", {key: 0.875 for key in DATASETS}, n=8)
    models = collect([tmp_path / "runs"], None, [], reference="paper")
    figure = bar_chart(models, table_rows(models))
    FigureCanvasAgg(figure)
    axes = figure.axes[0]
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    papers = {model.name for model in models if model.kind == REFERENCE}
    marks = []
    for line in axes.lines:
        if line.get_label() in papers:
            half = line.get_markersize() / 2 * figure.dpi / 72
            for x, y in line.get_xydata():
                cx, cy = axes.transData.transform((x, y))
                marks.append((cx - half, cy - half, cx + half, cy + half))
    assert len(marks) == 16 * 12
    labels = [text for text in axes.texts if text.get_text().replace(".", "").isdigit()]
    assert len(labels) == 2 * 12  # a value on every bar of both rows, 0.0 included
    for text in labels:
        box = Text.get_window_extent(text, renderer)
        hits = [m for m in marks if box.x0 < m[2] and m[0] < box.x1 and box.y0 < m[3] and m[1] < box.y1]
        assert not hits, f"label {text.get_text()} at {text.get_position()} overlaps a paper mark"
        assert text.get_position()[1] == LABEL_BASE  # at the bar's base, inside it
    bars = {c.get_label(): c for c in axes.containers if isinstance(c, BarContainer)}
    score = bars["clsbench_hf (org/tiny) [score]"]
    columns = [spec.abbreviation for spec in DATASETS.values() if spec.in_paper]
    for column, patch in zip(columns, score.patches):
        zero = DATASETS[dataset_for_name(column)].key in zeros
        assert (patch.get_height() == 0) == zero, column  # a 0.0 cell: no bar drawn
    centres = [patch.get_x() + patch.get_width() / 2 for patch in score.patches if patch.get_height() == 0]
    assert len(centres) == 3
    caps = {id(cap) for bar in bars.values() for cap in bar.errorbar.lines[1]}
    for line in axes.lines:  # nothing stands in for the missing bar (the old stub was a "_" mark at 0.8)
        if line.get_label() in papers or line.get_marker() in (None, "None", "", " "):
            continue  # the paper's marks stand apart; the error bar's own data line draws nothing
        points = [(x, y) for x, y in line.get_xydata() if any(abs(x - c) < 1e-9 for c in centres)]
        if id(line) in caps:  # the interval's caps: 0/8's Wilson interval is [0, 32.4], the lower cap on the axis
            assert all(y == 0.0 or y == pytest.approx(32.44, abs=0.01) for _, y in points)
            continue
        assert not points, line.get_label()
    texts_at_zero = [t.get_text() for t in labels if any(abs(t.get_position()[0] - c) < 1e-9 for c in centres)]
    assert texts_at_zero == ["0.0"] * 3
    # 8-row copies: the figure says its bars are not comparable with the paper's marks, as the table does
    assert "† bars from data copies smaller than the paper's splits" in axes.get_title(loc="left")
