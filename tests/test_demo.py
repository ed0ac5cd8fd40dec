"""The README's main command, end to end: `clsbench demo` offline."""

import subprocess
import sys

from clsbench.tasks.protocol.catalog import ALL_TASKS_GROUP, resolve_datasets


def test_demo_runs_everything_offline_and_ends_with_the_report(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "clsbench.tasks.cli", "demo", "--output-dir", str(tmp_path), "--samples", "3"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    table = (tmp_path / "report" / "table.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| tiny")]
    assert len(rows) == 2 and any("clsbench_hf score" in row for row in rows) and any("clip mcq" in row for row in rows)
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")][1:]
        paper = resolve_datasets(ALL_TASKS_GROUP)
        assert len(cells) == len(paper) + 2 and all(
            cell != "—" for cell in cells
        )  # the paper's datasets, both averages
        # † every cell is from the 8-row fixture copies, a subset of the paper's split (never "complete" beside it)
        assert all(cell.endswith("†") and 0.0 <= float(cell[:-1]) <= 100.0 for cell in cells)
    assert "Missing datasets: none" in run.stdout and "complete" not in run.stdout.split("Missing datasets:")[1]
    # lmms-eval's own log lines (and their colour codes) stay in a log file, out of the demo's output
    assert (tmp_path / "lmms_eval.log").stat().st_size > 0 and "| INFO " not in run.stdout + run.stderr
    assert "\x1b[" not in run.stdout
    for name in ("bars.png", "bars.svg", "table.csv", "table.tex", "per_class.csv"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    # every output folder records the versions that produced it
    assert (tmp_path / "report" / "clsbench_versions.json").is_file()
    assert (tmp_path / "results" / "clsbench_versions.json").is_file()
    assert len(list((tmp_path / "clip_results").glob("*/clsbench_versions.json"))) == 1
    # score mode always answers with a letter, so nothing is unparseable
    logs = list((tmp_path / "model_logs").glob("*.jsonl"))
    assert len(logs) == len(resolve_datasets(ALL_TASKS_GROUP))
