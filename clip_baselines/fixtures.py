"""A tiny random-weight open_clip model, written as an open_clip ``local-dir:`` folder, fully offline.

Tests, the demo and the throughput bench need a real open_clip model (real factory, transform,
tokenizer, encoders) that builds in a second on a CPU. Weights are seeded and saved, so every
process of a data-parallel run, and every later run, loads the very same model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
TINY_LABEL = "tiny open_clip ViT (random weights)"
_CONFIG_FILE = "open_clip_config.json"
_WEIGHTS_FILE = "open_clip_model.safetensors"


def build_tiny_clip(path: str | os.PathLike, seed: int = 0, config: dict | None = None) -> Path:
    """Write (once) a tiny random open_clip model to ``path``; load it with ``local-dir:<path>``.

    The folder appears complete or not at all (written next to it, then renamed), so an
    interrupted build is rebuilt instead of half-loaded.
    """
    import open_clip
    import torch
    from safetensors.torch import save_file

    path = Path(path).resolve()
    model_cfg = config or TINY_CONFIG
    wanted = {"model_cfg": model_cfg, "preprocess_cfg": {}, "clsbench_seed": seed}
    if (path / _WEIGHTS_FILE).is_file() and _read_json(path / _CONFIG_FILE) == wanted:
        return path
    torch.manual_seed(seed)
    model = open_clip.CLIP(**model_cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
        save_file(state, str(staging / _WEIGHTS_FILE))
        (staging / _CONFIG_FILE).write_text(json.dumps(wanted, indent=1) + "\n")
        if path.exists():
            shutil.rmtree(path)
        staging.rename(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def tiny_model_name(path: str | os.PathLike) -> str:
    """The ``--model`` value that loads the folder written by :func:`build_tiny_clip`."""
    return f"local-dir:{Path(path).resolve()}"


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
