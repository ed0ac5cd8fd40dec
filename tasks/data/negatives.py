"""Hard negatives: ranked wrong classes computed once by a model and stored in a file.

The MLLM tasks and the CLIP baselines both read the file, so they still answer identical
questions (:func:`clsbench.tasks.protocol.draws.build_question` with ``ranked_negatives``).

* ``text-similar`` (the paper's Appendix B.3, BERT there; any Hub sentence encoder here): for each
  class, the other classes ranked by cosine similarity of their name embeddings. Per class.
* ``clip-hard`` (the 5-way hard protocol): for each image, the classes ranked by a full zero-shot
  pass of OpenCLIP ViT-L/14 (LAION-2B, single template), the right class left out. Per sample.

File: ``<data root>/negatives/<dataset>.<method>.json`` =
``{"format": "clsbench-negatives-v1", "dataset", "method", "model", "fingerprint", "classnames_sha256",
"per_class" | "per_sample": {key: [class indices, most similar first]}}``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clsbench.tasks.data.loading import DataError, data_root
from clsbench.tasks.protocol.catalog import CLIP_HARD, HARD_NEGATIVES, TEXT_SIMILAR
from clsbench.tasks.runtime.errors import UnknownNameError

FORMAT = "clsbench-negatives-v1"
METHODS = HARD_NEGATIVES
DEFAULT_TEXT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
KEEP = 50  # ranked entries stored per key: enough for 25 wrong options after skipping repeated names


def classnames_digest(classnames: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(classnames), ensure_ascii=False).encode()).hexdigest()


def negatives_path(dataset: str, method: str, data_dir: str | os.PathLike | None = None) -> Path:
    return data_root(data_dir) / "negatives" / f"{dataset}.{method}.json"


def _command_hint(dataset: str, method: str) -> str:
    # clip-hard with no --model: the protocol's OpenCLIP ViT-L/14 on LAION-2B
    model = " --encoder sentence-transformers/all-MiniLM-L6-v2" if method == TEXT_SIMILAR else ""
    return f"clsbench negatives --datasets {dataset} --method {method}{model}"


@dataclass(frozen=True)
class Negatives:
    dataset: str
    method: str
    ranked: dict[str, list[int]]  # class index (as str) or sample key -> ranked class indices
    per_sample: bool

    def for_sample(self, sample_key: str, label: int) -> list[int]:
        key = sample_key if self.per_sample else str(label)
        try:
            return self.ranked[key]
        except KeyError:
            what = f"sample {sample_key}" if self.per_sample else f"class {label}"
            raise DataError(f"{self.dataset}: the {self.method} negatives file has no entry for {what}") from None


def load_negatives(
    dataset: str, method: str, classnames: Sequence[str], data_dir: str | os.PathLike | None = None
) -> Negatives:
    """Read a negatives file, checking it was made for this dataset and class list."""
    if method not in METHODS:
        raise UnknownNameError(f"unknown negatives method {method!r}; choose one of {', '.join(METHODS)}")
    path = negatives_path(dataset, method, data_dir)
    if not path.is_file():
        raise DataError(
            f"{dataset}: no {method} negatives at {path}. Compute them with\n"
            f"  {_command_hint(dataset, method)} --data-dir {data_root(data_dir)}"
        )
    content = json.loads(path.read_text("utf-8"))
    if content.get("format") != FORMAT or content.get("dataset") != dataset or content.get("method") != method:
        raise DataError(f"{path} is not a {method} negatives file for {dataset}")
    if content.get("classnames_sha256") != classnames_digest(classnames):
        raise DataError(f"{path} was made for another class list of {dataset}; recompute it")
    per_sample = "per_sample" in content
    return Negatives(dataset, method, content["per_sample" if per_sample else "per_class"], per_sample)


def write_negatives(
    dataset: str,
    method: str,
    model: str,
    classnames: Sequence[str],
    ranked: dict[str, list[int]],
    out_root: str | os.PathLike | None = None,
    fingerprint: dict | None = None,
) -> Path:
    path = negatives_path(dataset, method, out_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {
        "format": FORMAT,
        "dataset": dataset,
        "method": method,
        "model": model,
        "fingerprint": fingerprint or {},  # what produced the ranking: weights, prompts, precision
        "classnames_sha256": classnames_digest(classnames),
        "per_sample" if method == CLIP_HARD else "per_class": ranked,
    }
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(content), "utf-8")
    partial.replace(path)
    return path


def rank_by_similarity(similarity, exclude: Sequence[int], keep: int = KEEP) -> list[list[int]]:
    """Per row, column indices by descending similarity (ties: lower index first), ``exclude[row]`` left out."""
    import torch

    scores = similarity.clone().float()
    scores[torch.arange(len(exclude)), torch.as_tensor(list(exclude))] = float("-inf")
    # A stable sort on the negated scores keeps ties in index order on every machine.
    order = torch.sort(-scores, dim=1, stable=True).indices[:, : min(keep, scores.shape[1] - 1)]
    return order.tolist()


def text_similar(dataset: str, classnames: Sequence[str], encoder: str = DEFAULT_TEXT_ENCODER, out_root=None) -> Path:
    """Rank every class's neighbours by sentence-embedding similarity of the class names."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(encoder, device="cpu")
    with torch.no_grad():
        embeddings = model.encode(list(classnames), convert_to_tensor=True, normalize_embeddings=True).float()
    ranked = rank_by_similarity(embeddings @ embeddings.T, exclude=list(range(len(classnames))))
    from clsbench.tasks.runtime.stores import weights_fingerprint

    fingerprint = {"encoder": encoder, "weights": weights_fingerprint(encoder), "precision": "fp32"}
    return write_negatives(
        dataset,
        "text-similar",
        encoder,
        classnames,
        {str(c): row for c, row in enumerate(ranked)},
        out_root,
        fingerprint,
    )
