"""The model coverage table: the paper's ten MLLMs, routes that exist, commands that parse, registrations."""

from __future__ import annotations

import importlib.metadata
import shlex

from clsbench.models.catalog import MODE_NOTE, ROUTES, markdown_table, vlmeval_models
from clsbench.tasks.cli.main import build_parser, main

PAPER_MODELS = {
    "Qwen-VL-Chat",
    "LLaVA-1.5-7B",
    "LLaVA-1.6-7B",
    "DeepSeek-VL-7B",
    "Phi-3-Vision",
    "MiniCPM-Llama3-V-2.5",
    "InternVL2-8B",
    "MiniCPM-V-2.6",
    "LLaVA-OneVision-7B",
    "Qwen2-VL-7B",
}


def test_all_ten_paper_models_plus_current_ones_are_covered():
    assert {route.name for route in ROUTES if route.in_paper} == PAPER_MODELS
    assert any(route.name.startswith("Qwen2.5-VL") for route in ROUTES)
    assert any(not route.in_paper and route.name.startswith("Qwen3-VL") for route in ROUTES)


def test_transformers_native_routes_are_image_text_to_text_architectures():
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
    )

    native = [route for route in ROUTES if route.architecture]
    assert len(native) >= 7
    for route in native:
        assert route.lmms_model == "clsbench_hf" and f"pretrained={route.checkpoint}" in route.lmms_args
        assert route.architecture in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES, route


def test_every_lmms_route_names_a_registered_model_and_parses():
    from lmms_eval.models import get_model_manifest

    parser = build_parser()
    for route in ROUTES:
        assert get_model_manifest(route.lmms_model).model_id == route.lmms_model
        argv = shlex.split(route.lmms_command())[1:]
        args, extra = parser.parse_known_args(argv)
        assert args.command == "lmms" and extra[extra.index("--model") + 1] == route.lmms_model
        assert extra[extra.index("--tasks") + 1] == "cls_mcq"


def test_entry_point_registers_both_models():
    (entry,) = [
        ep for ep in importlib.metadata.entry_points(group="lmms_eval.models") if ep.value.startswith("clsbench.")
    ]
    manifests = {manifest.model_id: manifest for manifest in entry.load()()}  # a callable, as lmms-eval accepts
    assert manifests["clsbench_hf"].simple_class_path == "clsbench.models.lmms.clsbench_hf.ClsbenchHF"
    assert manifests["clsbench_minicpm"].simple_class_path == "clsbench.models.lmms.minicpm.ClsbenchMiniCPM"


def test_vlmeval_model_names_cover_the_native_checkpoints_in_both_modes():
    entries = vlmeval_models()
    native = [route for route in ROUTES if route.architecture]
    assert len(entries) == 2 * len(native)
    for route in native:
        assert entries[f"clsbench_{route.slug}"] == {"model_path": route.checkpoint, "mode": "generate"}
        assert entries[f"clsbench_{route.slug}-score"]["mode"] == "score"
        assert route.vlmeval_model.startswith(f"clsbench_{route.slug}") and "-score" not in route.vlmeval_model


def test_clsbench_models_prints_the_table(capsys):
    assert main(["models", "--markdown"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == MODE_NOTE + "\n\n" + markdown_table()
    assert len(printed.splitlines()) == 4 + len(ROUTES)
    # The commands that reproduce the paper use its protocol (issue 29); score is named as the faster alternative.
    assert (
        "clsbench lmms --model clsbench_hf --model_args pretrained=Qwen/Qwen2-VL-7B-Instruct,mode=generate" in printed
    )
    assert "mode=score" not in markdown_table() and "`mode=score` is the faster alternative" in MODE_NOTE


def test_readme_shows_the_current_table():
    from pathlib import Path

    readme = Path(__file__).resolve().parents[1] / "models" / "README.md"
    assert markdown_table() in readme.read_text("utf-8"), (
        "models/README.md's model table is stale: paste `clsbench models`"
    )
    assert MODE_NOTE in readme.read_text("utf-8"), "models/README.md must say which mode reproduces the paper"
