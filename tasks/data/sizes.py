"""Bytes on disk per dataset: what one download of its evaluation split (or its raw files) takes, with the source.

Figures come from the pinned revisions' own cards and trees (``HUB_LABELS.md``, ``SOURCES.md``) where those were
read; where no figure was read, ``gigabytes`` is None and ``note`` says so. ``clsbench plan`` and the README's
Table 2 runbook print this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DiskFigure:
    """One dataset's download: gigabytes (10^9 bytes; None when no figure was read), what it covers, and where the
    figure comes from."""

    gigabytes: float | None
    what: str
    source: str


DOWNLOAD_SIZES: dict[str, DiskFigure] = {
    "imagenet": DiskFigure(
        6.7,
        "validation split (50,000 JPEGs); estimate",
        "the official ILSVRC2012_img_val.tar (6,744,924,160 bytes), whose JPEGs the Hub parquet holds; "
        "the parquet files at the pin were not read",
    ),
    "imagenetv2": DiskFigure(
        1.26,
        "the 10,000 images; estimate",
        "SOURCES.md: vaishaal/ImageNetV2's imagenetv2-matched-frequency.tar.gz (the same images; the WebDataset "
        "shards at the pin were not read)",
    ),
    "objectnet": DiskFigure(None, "raw release (objectnet-1.0)", "not read here: see https://objectnet.dev"),
    "caltech101": DiskFigure(None, "raw 101_ObjectCategories/", "not read here"),
    "cub200": DiskFigure(0.56, "test split", "HUB_LABELS.md, files at the pin (2026-11-29)"),
    "food101": DiskFigure(
        1.28,
        "validation split (the official test set)",
        "the pinned commit 1ac27ab's card: dataset_info num_bytes 1,275,182,340 for validation",
    ),
    "gldv2": DiskFigure(
        10.0,
        "raw test set (20 TARs, 117,577 images; prepare keeps the labelled subset)",
        "SOURCES.md: 20 TARs of ~500 MB each",
    ),
    "logo": DiskFigure(
        0.097, "the whole repository (2,038 JPEGs; the test split is 500)", "SOURCES.md: ~97 MB at fa2c9e3"
    ),
    "flowers102": DiskFigure(2.5, "test split", "HUB_LABELS.md, files at the pin (2026-11-29)"),
    "stanfordcars": DiskFigure(0.99, "test split", "HUB_LABELS.md, files at the pin (2026-11-29)"),
    "pets": DiskFigure(0.413, "test split", "HUB_LABELS.md: data/test-00000-of-00001.parquet, 413 MB"),
}
