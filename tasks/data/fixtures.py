"""Small offline stand-ins for the ten datasets: synthetic images, the real class lists.

They are prepared copies in the standard schema (see :mod:`clsbench.tasks.data.loading`), so the demo and
the tests run the exact code path a prepared real dataset takes. Google Landmarks v2 has no
packaged class list (it is built from the raw CSVs at prepare time), so its fixture uses a short
list of real landmark names instead.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from PIL import Image, ImageDraw

from clsbench.tasks.data.loading import PreparedData, write_prepared
from clsbench.tasks.protocol.registry import DATASETS

GLDV2_FIXTURE_CLASSES = (
    "Eiffel Tower",
    "Colosseum",
    "Big Ben",
    "Taj Mahal",
    "Golden Gate Bridge",
    "Sydney Opera House",
    "Statue of Liberty",
    "Machu Picchu",
    "Sagrada Família",
    "Mount Fuji",
    "Brandenburg Gate",
    "Acropolis of Athens",
    "Tower Bridge",
    "Angkor Wat",
    "Petra",
    "Christ the Redeemer (statue)",
    "Neuschwanstein Castle",
    "Alhambra",
    "Chichen Itza",
    "Leaning Tower of Pisa",
    "Hagia Sophia",
    "Burj Khalifa",
    "St. Basil's Cathedral",
    "Great Wall of China",
    "Stonehenge",
    "Louvre Pyramid",
    "Mont-Saint-Michel",
    "Forbidden City",
    "Notre-Dame de Paris",
    "Charles Bridge",
)


def fixture_classnames(key: str) -> tuple[str, ...]:
    return DATASETS[key].classnames or GLDV2_FIXTURE_CLASSES


def fixture_labels(key: str, count: int) -> list[int]:
    """Spread labels over the class list, deterministically (a different start per dataset)."""
    n_classes = len(fixture_classnames(key))
    start = int(hashlib.sha256(key.encode()).hexdigest(), 16) % n_classes
    step = max(1, n_classes // count) if count else 1
    return [(start + index * step) % n_classes for index in range(count)]


def synthetic_image(key: str, index: int, label: int, size: int = 48) -> bytes:
    """A PNG whose colours and shape depend on the label (so images differ), seeded by nothing global."""
    digest = hashlib.sha256(f"{key}|{label}".encode()).digest()
    image = Image.new("RGB", (size, size), tuple(digest[:3]))
    draw = ImageDraw.Draw(image)
    inset = 4 + digest[3] % (size // 4)
    draw.ellipse((inset, inset, size - inset, size - inset), fill=tuple(digest[4:7]))
    draw.text((2, 2), str(index), fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_fixture_dataset(root: str | os.PathLike, key: str, count: int = 8, progress: bool = True) -> PreparedData:
    classnames = fixture_classnames(key)
    records = (
        (f"fixture/{key}/{index:05d}.png", synthetic_image(key, index, label), label)
        for index, label in enumerate(fixture_labels(key, count))
    )
    provenance = {"builder": "clsbench.tasks.data.fixtures", "note": "synthetic images for offline runs; not real data"}
    return write_prepared(Path(root) / key, key, records, classnames, provenance, total=count, progress=progress)


def write_fixture_data(
    root: str | os.PathLike, count: int = 8, keys: list[str] | None = None, progress: bool = True
) -> Path:
    """Prepared fixture copies of the datasets (all ten by default) under ``root``."""
    for key in keys or DATASETS:
        write_fixture_dataset(root, key, count, progress)
    return Path(root)
