"""One settings object for every adapter: clsbench_hf, clsbench_vllm and VLMEvalKit's ClsbenchVLM accept the same
settings and mean the same by them (issue 27: ``log_dir=off`` made a folder named "off" in two of them)."""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import fields

import pytest

from clsbench.models.engine.settings import (
    DEFAULT_LOG_DIR,
    DEFAULT_MAX_NEW_TOKENS,
    ModelSettings,
    TransformersSettings,
    is_off,
)
from clsbench.tasks.data.fixtures import synthetic_image
from clsbench.tasks.protocol.questions import format_prompt

SHARED = {
    "mode": "score",
    "max_new_tokens": 5,
    "loglik_norm": "mean",
    "cfg_weight": 0.5,
    "loglik_context": "prompt",
    "system_prompt": "Answer briefly.",
}


@pytest.fixture()
def vlmeval_model(monkeypatch):
    """``ClsbenchVLM``; where VLMEvalKit is not installed (it is not on PyPI), over a bare ``BaseModel`` in its place
    (the wrapper uses nothing of it but the class to derive from)."""
    if importlib.util.find_spec("vlmeval") is None:
        base = types.ModuleType("vlmeval.vlm.base")
        base.BaseModel = type("BaseModel", (), {})
        for name in ("vlmeval", "vlmeval.vlm"):
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
        monkeypatch.setitem(sys.modules, "vlmeval.vlm.base", base)
        monkeypatch.delitem(sys.modules, "clsbench.models.vlmeval.model", raising=False)
    from clsbench.models.vlmeval.model import ClsbenchVLM

    return ClsbenchVLM


def _adapters(tiny_llava, vlmeval_model, **args) -> dict:
    from clsbench.models.lmms.clsbench_hf import ClsbenchHF
    from clsbench.models.lmms.vllm import ClsbenchVLLM

    return {
        "clsbench_hf": ClsbenchHF(pretrained=str(tiny_llava), answer_store="none", **args),
        "clsbench_vllm": ClsbenchVLLM(pretrained=str(tiny_llava), engine=object(), **args),  # vLLM needs a GPU
        "ClsbenchVLM": vlmeval_model(model_path=str(tiny_llava), **args),
    }


def _shared(settings: ModelSettings) -> dict:
    return {f.name: getattr(settings, f.name) for f in fields(ModelSettings)}


def test_the_three_adapters_take_the_same_settings_and_log_dir_off_is_off_everywhere(
    tiny_llava, vlmeval_model, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    for log_dir, folder in (("off", None), ("None", None), (str(tmp_path / "logs"), tmp_path / "logs")):
        models = _adapters(tiny_llava, vlmeval_model, log_dir=log_dir, **SHARED)
        expected = _shared(ModelSettings(log_dir=log_dir, **SHARED))
        assert expected["log_dir"] == (None if folder is None else str(folder))
        for name, model in models.items():
            assert _shared(model.settings) == expected, name
            assert model.decision_log.folder == folder, (name, log_dir)
            assert model.settings.reply_limit(None) == 5 and model.settings.reply_limit(64) == 5
        # the values reach what answers: the HF answerer and the vLLM adapter read the same numbers
        for model in (models["clsbench_hf"].answerer, models["ClsbenchVLM"].answerer, models["clsbench_vllm"]):
            assert (model.loglik_norm, model.cfg_weight, model.loglik_context) == ("mean", 0.5, "prompt")
        # one question through the VLMEvalKit wrapper's own entry point: a log only where one was asked for
        image = tmp_path / "7.png"
        image.write_bytes(synthetic_image("logo", 7, 0))
        message = [
            {"type": "image", "value": str(image)},
            {"type": "text", "value": format_prompt("What is this?", ["cat", "dog", "fox"])},
        ]
        assert models["ClsbenchVLM"].generate_inner(message, "ClsBench_logo") in ("A", "B", "C")
        logged = sorted(path.name for path in tmp_path.rglob("*.jsonl"))
        if folder is None:
            assert logged == [] and not (tmp_path / "off").exists() and not (tmp_path / "None").exists()
        else:
            assert logged == [next((folder).glob("*.jsonl")).name] and "vlmeval_rank0_ClsBench_logo" in logged[0]


def test_settings_are_parsed_once_with_one_meaning():
    assert all(is_off(value) for value in (None, False, "", "none", "None", "false", "off", "OFF"))
    assert not is_off("logs") and not is_off("offline")
    assert ModelSettings().log_dir == DEFAULT_LOG_DIR and ModelSettings().reply_limit() == DEFAULT_MAX_NEW_TOKENS
    assert ModelSettings().reply_limit(32) == 32 and ModelSettings(max_new_tokens="8").reply_limit(32) == 8
    assert TransformersSettings(loglik_reuse="false").loglik_reuse is False
    assert TransformersSettings(loglik_reuse=0).loglik_reuse is False
    with pytest.raises(ValueError, match="mode must be one of"):
        ModelSettings(mode="rank")
    with pytest.raises(ValueError, match="loglik_norm must be one of"):
        ModelSettings(loglik_norm="max")
    settings, rest = TransformersSettings.split({"mode": "loglik", "num_workers": 2})
    assert settings.mode == "loglik" and rest == {"num_workers": 2}


def test_the_answer_store_fingerprint_is_every_setting_that_changes_an_answer():
    """Derived from the settings object: the keys clsbench_hf wrote by hand before (stores stay reusable)."""
    assert set(TransformersSettings().fingerprint()) == {
        "loglik_norm",
        "cfg_weight",
        "loglik_context",
        "max_new_tokens",
        "system_prompt",
        "attn_implementation",
        "compile",
        "loglik_reuse",
    }
