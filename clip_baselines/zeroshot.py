"""Zero-shot scoring: class text embeddings (prompt ensembles, cached on disk) and batched image predictions.

The maths is CLIP's and CLIP_benchmark's: each prompt embedding is L2-normalised, the prompts of a
class are averaged and the mean renormalised; an image goes to the class of highest cosine
similarity. ``mcq`` mode takes the same image-by-class similarity matrix and, per sample, picks
the best of its own options (one gather), so restricting the choice never re-encodes text.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from clsbench.clip_baselines.results import TEMPLATE_CHOICES
from clsbench.tasks.data.samples import open_image
from clsbench.tasks.protocol.registry import get_dataset

SINGLE_TEMPLATE = "a photo of a {}"  # P2 and P3 print "a photo of a {classname}", no full stop
CACHE_VERSION = 1
TEXT_BATCH = 1024  # prompts per text-encoder call


def templates_for(dataset: str, kind: str = "ensemble") -> tuple[str, ...]:
    """The dataset's published prompt ensemble, or CLIP's single default prompt."""
    if kind == "single":
        return (SINGLE_TEMPLATE,)
    if kind != "ensemble":
        raise ValueError(f"templates must be one of {TEMPLATE_CHOICES}, got {kind!r}")
    return get_dataset(dataset).templates


def fill(template: str, classname: str) -> str:
    """The prompt for one class (``str.replace``, so braces in class names are harmless)."""
    return template.replace("{}", classname)


def default_cache_dir() -> Path:
    return Path(os.environ.get("CLSBENCH_CLIP_CACHE") or "~/.cache/clsbench/clip_text").expanduser()


def autocast_for(device: torch.device, precision: str):
    """Mixed precision on GPU (``auto`` = fp16 autocast there), plain fp32 elsewhere or when asked."""
    if precision == "auto":
        precision = "fp16" if device.type == "cuda" else "fp32"
    if precision == "fp32":
        return contextlib.nullcontext(), "fp32"
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    if dtype is None:
        raise ValueError(f"precision must be auto, fp32, fp16 or bf16, got {precision!r}")
    return torch.autocast(device.type, dtype=dtype), precision


@torch.inference_mode()
def encode_classes(
    model, tokenizer, classnames: Sequence[str], templates: Sequence[str], device, precision="auto"
) -> torch.Tensor:
    """(n_classes, dim) unit vectors: every prompt of every class in large batches, averaged per class."""
    prompts = [fill(template, name) for name in classnames for template in templates]
    chunks = []
    for start in range(0, len(prompts), TEXT_BATCH):
        tokens = tokenizer(prompts[start : start + TEXT_BATCH]).to(device)
        autocast, _ = autocast_for(device, precision)
        with autocast:
            chunks.append(F.normalize(model.encode_text(tokens).float(), dim=-1))
    per_prompt = torch.cat(chunks).view(len(classnames), len(templates), -1)
    return F.normalize(per_prompt.mean(dim=1), dim=-1)


def text_cache_key(fingerprint: dict, classnames: Sequence[str], templates: Sequence[str], precision: str) -> str:
    """A file name that changes whenever the weights, class names, prompts or precision do.

    Keyed by content, not dataset key, so datasets sharing class names and prompts (ImageNet and
    ImageNetV2) share one entry.
    """
    blob = json.dumps(
        {
            "v": CACHE_VERSION,
            "model": fingerprint,
            "classnames": list(classnames),
            "templates": list(templates),
            "precision": precision,
        },
        sort_keys=True,
    )
    return f"{hashlib.sha256(blob.encode()).hexdigest()[:32]}.pt"


def class_embeddings(
    loaded,
    classnames: Sequence[str],
    templates: Sequence[str],
    *,
    cache_dir: str | os.PathLike | None = None,
    precision: str = "auto",
) -> torch.Tensor:
    """Class embeddings for one (model, class names, templates), from the disk cache when present.

    Written atomically (temp file, then rename), so concurrent processes and crashes never leave
    a half-written cache entry. Returned on the model's device, float32.
    """
    _, resolved = autocast_for(loaded.device, precision)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / text_cache_key(loaded.ref.fingerprint(), classnames, templates, resolved)
    if path.is_file():
        weights = torch.load(path, map_location="cpu", weights_only=True)
        if weights.shape[0] == len(classnames):
            return weights.to(loaded.device)
    weights = encode_classes(loaded.model, loaded.tokenizer, classnames, templates, loaded.device, precision)
    from clsbench.tasks.runtime.stores import writing

    temporary = folder / f".{path.name}.{uuid.uuid4().hex}.tmp"  # unique per writer, usual file permissions
    try:
        with writing(path, "the text-embedding cache (--cache-dir)"):
            folder.mkdir(parents=True, exist_ok=True)
            torch.save(weights.cpu(), temporary)
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return weights


class ImageRows(torch.utils.data.Dataset):
    """Rows of a split as (image tensor, row index); index -1 marks padding (see :func:`shard`)."""

    def __init__(self, rows, dataset: str, items: Sequence[tuple[int, bool]], transform):
        import datasets

        keep = [column for column in ("image", "source_id") if column in rows.column_names]
        self.rows = rows.select_columns(keep).cast_column("image", datasets.Image(decode=False))
        self.dataset = dataset
        self.items = list(items)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, position: int):
        index, real = self.items[position]
        row = self.rows[index]
        image = open_image(row["image"], dataset=self.dataset, sample_key=str(index), source_id=row.get("source_id"))
        return self.transform(image), index if real else -1


def shard(indices: Sequence[int], rank: int, world: int) -> list[tuple[int, bool]]:
    """Rank ``rank``'s share, padded so every rank gets the same count (and the same number of batches).

    Sample ``indices[i]`` goes to rank ``i % world``; padding repeats a real index marked not real,
    so the collective gathers never wait on a rank that ran out of work.
    """
    mine = [(index, True) for index in indices[rank::world]]
    length = -(-len(indices) // world) if indices else 0
    filler = mine[0][0] if mine else (indices[0] if indices else 0)
    return mine + [(filler, False)] * (length - len(mine))


TOP_K = 5


@torch.inference_mode()
def predict_batches(
    loaded,
    batches: Iterable,
    class_weights: torch.Tensor,
    options: torch.Tensor | None,
    precision: str = "auto",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Per batch, (row indices on CPU, -1 for padding; predicted classes, still on the device).

    ``full``: argmax over all classes. ``mcq`` (``options`` is the (n_rows, n_options) class-index
    table): argmax over the sample's own options, read from the same similarity row. Nothing here
    waits for the GPU; the caller syncs once per flush (:func:`pairs`).
    """
    device = loaded.device
    weights_t = class_weights.t().contiguous()
    table = options.to(device) if options is not None else None
    for images, indices in batches:
        images = images.to(device, non_blocking=True)
        autocast, _ = autocast_for(device, precision)
        with autocast:
            features = loaded.model.encode_image(images)
        similarity = F.normalize(features.float(), dim=-1) @ weights_t
        if (
            table is None
        ):  # full mode: the top 5 classes, best first (top-1 is predicted[:, 0]; acc5 for CLIP_benchmark)
            predicted = similarity.topk(min(TOP_K, similarity.shape[1]), dim=1).indices
        else:
            choices = table[indices.clamp(min=0).to(device, non_blocking=True)]
            predicted = choices.gather(1, similarity.gather(1, choices).argmax(dim=1, keepdim=True)).squeeze(1)
        yield indices, predicted


def pairs(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> list[tuple[int, int | list[int]]]:
    """``(row index, predicted class)`` (full mode: the top-5 list) for the real rows of some batches; one sync."""
    if not batches:
        return []
    indices = torch.cat([index for index, _ in batches]).tolist()
    predicted = torch.cat([label for _, label in batches]).cpu().tolist()
    return [(index, label) for index, label in zip(indices, predicted) if index >= 0]
