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


@pytest.fixture(autouse=True)
def _answer_store_per_test(tmp_path, monkeypatch):
    """clsbench_hf's default answer store goes to a folder of each test's own, never shared between tests."""
    monkeypatch.setenv("CLSBENCH_ANSWER_STORE", str(tmp_path / "answer_store"))
    # weight-file hashes, per test, beside (not inside) the test's own folder, which tests list
    monkeypatch.setenv("CLSBENCH_HASH_CACHE", str(tmp_path.parent / f"{tmp_path.name}.file-hashes.json"))


@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory) -> Path:
    from clsbench.tasks.data.fixtures import write_fixture_data

    return write_fixture_data(tmp_path_factory.mktemp("data"), FIXTURE_SAMPLES)


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory) -> Path:
    from clsbench.models.fixtures import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("models") / "tiny-llava")


def build_tiny_sentence_encoder(out: Path) -> Path:
    """A random-weight BERT sentence encoder (WordPiece over letters and digits), saved for sentence-transformers."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers import models as token_models
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    pieces = [chr(c) for c in range(97, 123)] + [str(d) for d in range(10)]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {token: i for i, token in enumerate([*specials, *pieces, *(f"##{p}" for p in pieces)])}
    tokenizer = Tokenizer(token_models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(out / "bert")
    fast.save_pretrained(out / "bert")
    transformer = Transformer(str(out / "bert"), max_seq_length=64)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling]).save(str(out / "encoder"))
    return out / "encoder"


@pytest.fixture(scope="session")
def tiny_sentence_encoder(tmp_path_factory) -> Path:
    return build_tiny_sentence_encoder(tmp_path_factory.mktemp("encoder"))


_PARSER_STATS: list[tuple[str, int, int, int]] = []


@pytest.fixture
def record_parser_stats():
    """Tests of the answer parser report (what, replies, wrong letters, needless Nones) for the summary."""

    def record(what: str, replies: int, wrong: int, needless: int) -> None:
        _PARSER_STATS.append((what, replies, wrong, needless))

    return record


def pytest_terminal_summary(terminalreporter):
    if _PARSER_STATS:
        terminalreporter.section("answer parser")
        for what, replies, wrong, needless in _PARSER_STATS:
            terminalreporter.write_line(f"{what}: {replies} replies, {wrong} wrong letters, {needless} needless None")
