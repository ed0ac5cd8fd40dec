"""``clip-hard`` negatives: per image, the classes an OpenCLIP model finds most similar to it.

The 5-way hard protocol of "Understanding the Fine-Grained Knowledge Capabilities of Vision-Language
Models": the wrong options are the top 4 *incorrect* classes of a full zero-shot classification by an
OpenCLIP ViT-L/14 trained on LAION (chosen so as not to favour models built on OpenAI CLIP, SigLIP or
DFN), here :data:`DEFAULT_MODEL` with :data:`DEFAULT_PRETRAINED` and the single template
"a photo of a {}" (the protocol's CLIP prompt, as P3 prints it). Computed once
(``clsbench negatives --datasets DATASET --method clip-hard``) into the negatives file of
:mod:`clsbench.tasks.data.negatives`, which the ``cls_<dataset>_mcq_cliphard`` tasks and
``clsbench clip --negatives clip-hard`` both read, so MLLMs and CLIP models answer the same questions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from clsbench.clip_baselines.models import load_model, resolve_model, weights_identity
from clsbench.clip_baselines.zeroshot import ImageRows, autocast_for, class_embeddings, templates_for
from clsbench.tasks.data.loading import load_rows
from clsbench.tasks.data.negatives import rank_by_similarity, write_negatives
from clsbench.tasks.protocol.catalog import CLIP_HARD

DEFAULT_MODEL = "ViT-L-14"
DEFAULT_PRETRAINED = "laion2b_s32b_b82k"  # OpenCLIP ViT-L/14 trained on LAION-2B
DEFAULT_TEMPLATES = "single"


def clip_hard(
    dataset: str,
    classnames: Sequence[str],
    model: str = DEFAULT_MODEL,
    pretrained: str | None = DEFAULT_PRETRAINED,
    *,
    data_dir: str | os.PathLike | None = None,
    out_root: str | os.PathLike | None = None,
    templates: str = DEFAULT_TEMPLATES,
    batch_size: int = 64,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Rank every class for every image by image-text similarity (right class left out) and write the file."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    loaded = load_model(resolve_model(model, pretrained), device)
    weights = class_embeddings(loaded, classnames, templates_for(dataset, templates), cache_dir=cache_dir)
    rows = load_rows(dataset, data_dir)
    labels = [int(label) for label in rows["label"]]
    loader = torch.utils.data.DataLoader(
        ImageRows(rows, dataset, [(index, True) for index in range(len(labels))], loaded.preprocess),
        batch_size=batch_size,
    )
    ranked: dict[str, list[int]] = {}
    autocast, precision = autocast_for(device, "auto")
    with torch.no_grad():
        for images, indices in tqdm(loader, desc=f"clip-hard {dataset}", unit="batch"):
            with autocast:
                features = loaded.model.encode_image(images.to(device))
            similarity = (F.normalize(features.float(), dim=-1) @ weights.t()).cpu()
            rows_ranked = rank_by_similarity(similarity, exclude=[labels[i] for i in indices.tolist()])
            ranked.update({str(i): row for i, row in zip(indices.tolist(), rows_ranked)})
    name = loaded.ref.model_name + (f" ({loaded.ref.pretrained})" if loaded.ref.pretrained else "")
    fingerprint = {
        "model": loaded.ref.model_name,
        "pretrained": loaded.ref.pretrained,
        "weights": weights_identity(loaded.ref),
        "templates": templates,
        "template_texts": list(
            templates_for(dataset, templates)
        ),  # "a photo of a {}" since clsbench 0.4 (no full stop)
        "precision": precision,
    }
    return write_negatives(dataset, CLIP_HARD, name, classnames, ranked, out_root, fingerprint)
