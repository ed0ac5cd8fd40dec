"""clip-hard negatives: computed once by an OpenCLIP model, then read by the MLLM tasks and the CLIP baselines."""

from __future__ import annotations

import json
import subprocess
import sys

import torch
import torch.nn.functional as F

from clsbench.clip_baselines.fixtures import build_tiny_clip, tiny_model_name
from clsbench.clip_baselines.models import load_model, resolve_model
from clsbench.clip_baselines.run import run_clip
from clsbench.clip_baselines.zeroshot import class_embeddings, templates_for
from clsbench.tasks.cls_mcq.utils import questions_for
from clsbench.tasks.data.fixtures import write_fixture_dataset
from clsbench.tasks.data.loading import load_rows
from clsbench.tasks.data.negatives import negatives_path
from clsbench.tasks.data.samples import open_image
from clsbench.tasks.protocol.registry import DATASETS


def test_clip_hard_file_feeds_tasks_and_clip_alike(tmp_path):
    model = tiny_model_name(build_tiny_clip(tmp_path / "tiny-clip"))
    root = tmp_path / "root"  # one data root holds the data and the negatives file, as for a user
    write_fixture_dataset(root, "logo", 6)
    fixture_root = root
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "clsbench.tasks.cli",
            "negatives",
            "--datasets",
            "logo",
            "--method",
            "clip-hard",
            "--model",
            model,
            "--data-dir",
            str(fixture_root),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    stored = json.loads(negatives_path("logo", "clip-hard", root).read_text())["per_sample"]

    # The ranking is the image's similarity order, right class left out (checked independently).
    loaded = load_model(resolve_model(model))
    names = DATASETS["logo"].classnames
    weights = class_embeddings(
        loaded, names, templates_for("logo", "single"), cache_dir=tmp_path / "cache"
    )  # the protocol's prompt
    rows = load_rows("logo", fixture_root)
    for index, row in enumerate(rows):
        pixels = loaded.preprocess(open_image(row["image"], dataset="logo", sample_key=str(index))).unsqueeze(0)
        with torch.no_grad():
            similarity = (F.normalize(loaded.model.encode_image(pixels).float(), dim=-1) @ weights.t())[0]
        order = [c for c in torch.argsort(similarity, descending=True, stable=True).tolist() if c != row["label"]]
        assert stored[str(index)] == order

    # The 5-way task asks the top four of the image's list; the CLIP baseline reads the same file.
    docs = questions_for(rows, "logo", "_cliphard", root)
    for doc in docs:
        assert len(doc["options"]) == 5
        assert [c for c in doc["option_labels"] if c != doc["label"]] == stored[doc["sample_key"]][:4]
    summaries = run_clip(
        loaded,
        None,
        ["logo"],
        tmp_path / "clip",
        n_options=5,
        negatives="clip-hard",
        data_dir=fixture_root,
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    assert summaries["logo"]["negatives"] == "clip-hard"
    (run_dir,) = (tmp_path / "clip").iterdir()
    assert run_dir.name.endswith("__n5__clip-hard")
    lines = [json.loads(line) for line in (run_dir / "logo.predictions.jsonl").read_text().splitlines()]
    by_key = {line["sample_key"]: line for line in lines}
    for doc in docs:
        assert by_key[doc["sample_key"]]["options"] == doc["option_labels"]
        assert by_key[doc["sample_key"]]["answer"] == doc["answer"]
