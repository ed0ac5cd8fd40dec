"""``clsbench_minicpm`` against a stand-in remote-code model that speaks MiniCPM-V 2.5/2.6's ``chat`` API.

The real checkpoints cannot be loaded offline; this checks our side of the contract: the model is
loaded with ``trust_remote_code`` from a folder, ``chat`` gets one PIL image, the prompt as a
string message, greedy settings, and the reply is scored by the task. The stand-in knows each
fixture image's class from its background colour, so the expected accuracy is exactly 100 %.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

from clsbench.tasks.cls_mcq.task_folder import task_folder_for
from clsbench.tasks.data.fixtures import fixture_classnames

REMOTE_CODE = """
import re

import torch
from PIL import Image
from transformers import PretrainedConfig, PreTrainedModel


class FakeMiniCPMConfig(PretrainedConfig):
    model_type = "fake_minicpm"


class FakeMiniCPM(PreTrainedModel):
    config_class = FakeMiniCPMConfig

    def __init__(self, config):
        super().__init__(config)
        self.anchor = torch.nn.Linear(1, 1)
        self.post_init()

    def chat(self, image, msgs, tokenizer, sampling=True, max_new_tokens=1024, **kwargs):
        assert isinstance(image, Image.Image), type(image)
        assert sampling is False and kwargs.get("num_beams") == 1 and kwargs.get("repetition_penalty") == 1.0, kwargs
        assert len(msgs) == 1 and msgs[0]["role"] == "user" and isinstance(msgs[0]["content"], str)
        name = self.config.classes["%02x%02x%02x" % image.getpixel((0, 0))]
        for line in msgs[0]["content"].splitlines():
            match = re.match(r"([A-Z])\\. (.*)$", line)
            if match and match.group(2) == name:
                return match.group(1) + ". " + name
        return "I am not sure."
"""


def _background(key: str, label: int) -> str:
    return (
        hashlib.sha256(f"{key}|{label}".encode()).digest()[:3].hex()
    )  # as clsbench.tasks.data.fixtures.synthetic_image


@pytest.fixture(scope="module")
def fake_minicpm(tmp_path_factory, tiny_llava) -> Path:
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("fake-minicpm")
    (folder / "modeling_fake_minicpm.py").write_text(REMOTE_CODE)
    spec = importlib.util.spec_from_file_location("modeling_fake_minicpm", folder / "modeling_fake_minicpm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = {
        _background(key, label): name
        for key in ("logo", "food101")
        for label, name in enumerate(fixture_classnames(key))
    }
    module.FakeMiniCPM(module.FakeMiniCPMConfig(classes=classes)).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {
        "AutoConfig": "modeling_fake_minicpm.FakeMiniCPMConfig",
        "AutoModel": "modeling_fake_minicpm.FakeMiniCPM",
    }
    (folder / "config.json").write_text(json.dumps(config))
    AutoTokenizer.from_pretrained(tiny_llava).save_pretrained(folder)
    return folder


def test_minicpm_wrapper_passes_image_prompt_and_greedy_settings(fake_minicpm, fixture_root):
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from clsbench.models.lmms.minicpm import ClsbenchMiniCPM

    manager = TaskManager("ERROR", include_path=str(task_folder_for(fixture_root)))
    model = ClsbenchMiniCPM(pretrained=str(fake_minicpm), device="cpu")
    output = simple_evaluate(model=model, tasks=["cls_logo_mcq", "cls_food101_mcq"], task_manager=manager, batch_size=1)
    for task in ("cls_logo_mcq", "cls_food101_mcq"):
        assert output["results"][task]["accuracy,none"] == 1.0
        assert output["results"][task]["unparseable_rate,none"] == 0.0


def test_minicpm_wrapper_refuses_batches_and_unknown_args(fake_minicpm):
    from clsbench.models.lmms.minicpm import ClsbenchMiniCPM

    with pytest.raises(ValueError, match="one question at a time"):
        ClsbenchMiniCPM(pretrained=str(fake_minicpm), batch_size=4)
    with pytest.raises(ValueError, match="unknown model_args \\['sampling'\\]"):
        ClsbenchMiniCPM(pretrained=str(fake_minicpm), sampling=True)
