"""Shared, session-scoped fixtures: prepared fixture data for all ten datasets and a tiny LLaVA."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach the Hub; say so, so libraries fail fast instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FIXTURE_SAMPLES = 6


@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory) -> Path:
    from clsbench.tasks.fixtures import write_fixture_data

    return write_fixture_data(tmp_path_factory.mktemp("data"), FIXTURE_SAMPLES)


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory) -> Path:
    from clsbench.models.tiny import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("models") / "tiny-llava")
