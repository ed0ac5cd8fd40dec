"""How to run each of the paper's ten MLLMs (plus two current ones) on the clsbench tasks: one table, one place.

Rendered by ``clsbench models`` (the README table is its output), used to register the
transformers-native checkpoints as VLMEvalKit models, and checked by tests (architectures are
transformers image-text classes, lmms-eval model names exist, commands parse).
"""

from __future__ import annotations

from dataclasses import dataclass

from clsbench.tasks.protocol.catalog import (
    ALL_TASKS_GROUP,
    VLMEVAL_MODE_SUFFIXES,
    checkpoint_slug,
    vlmeval_model_name,
)

TINY_LLAVA = (
    "tiny LLaVA-1.5 (same `LlavaForConditionalGeneration` code path): generate, score, loglik through lmms-eval "
    "(CLI and in-process), VLMEvalKit run giving the same letters; built-in `llava_hf` in the tests and bench"
)
TINY_QWEN2_VL = (
    "tiny Qwen2-VL (same `Qwen2VLForConditionalGeneration` code path: dynamic patches, M-RoPE): "
    "score = greedy first letter, batch invariance, loglik"
)
TINY_QWEN25_VL = (
    "tiny Qwen2.5-VL (same `Qwen2_5_VLForConditionalGeneration` code path): score = greedy first letter, loglik"
)
TINY_ONEVISION = (
    "tiny LLaVA-OneVision (same `LlavaOnevisionForConditionalGeneration` code path: anyres tiles): "
    "score = greedy first letter, loglik"
)
TINY_LLAVA_NEXT = (
    "tiny LLaVA-NeXT (same `LlavaNextForConditionalGeneration` code path: anyres tiles, image_newline): "
    "score = greedy first letter, loglik"
)
TINY_QWEN3_VL = (
    "tiny Qwen3-VL (same `Qwen3VLForConditionalGeneration` code path: deepstack ViT, interleaved M-RoPE): "
    "score = greedy first letter, loglik"
)
STAND_IN_MINICPM = (
    "`clsbench_minicpm` checked against a stand-in remote-code model with the same `chat()` API "
    "(100 % on fixtures); the real model not run"
)
UNTESTED_NATIVE = "not run here: same `clsbench_hf` code, architecture not built tiny; needs the real weights"
UNTESTED_REMOTE = "not run here: remote code and weights cannot be loaded offline"


@dataclass(frozen=True)
class ModelRoute:
    """One model and the command that runs it on the clsbench tasks."""

    name: str  # as in the paper's tables
    checkpoint: str
    lmms_model: str  # lmms-eval --model
    lmms_args: str  # lmms-eval --model_args
    vlmeval_model: str  # VLMEvalKit --model (ours: clsbench_*, else VLMEvalKit's own wrapper)
    needs: str
    verified: str
    architecture: str | None = None  # transformers model_type when the route is transformers-native (clsbench_hf)
    batch_size: int = 1
    in_paper: bool = True

    @property
    def slug(self) -> str:
        return checkpoint_slug(self.checkpoint)

    def lmms_command(self, tasks: str = ALL_TASKS_GROUP) -> str:
        return (
            f"clsbench lmms --model {self.lmms_model} --model_args {self.lmms_args} --tasks {tasks} "
            f"--batch_size {self.batch_size} --output_path results/ --log_samples"
        )


def _native(
    name: str,
    checkpoint: str,
    architecture: str,
    verified: str,
    vlmeval_own: str | None = None,
    *,
    in_paper: bool = True,
    needs: str = "base install",
) -> ModelRoute:
    return ModelRoute(
        name=name,
        checkpoint=checkpoint,
        lmms_model="clsbench_hf",
        lmms_args=f"pretrained={checkpoint},mode=generate",  # the paper's protocol; mode=score is the faster one
        vlmeval_model=vlmeval_model_name(checkpoint, "generate")
        + (f" (or VLMEvalKit's `{vlmeval_own}`)" if vlmeval_own else ""),
        needs=needs,
        verified=verified,
        architecture=architecture,
        batch_size=8,
        in_paper=in_paper,
    )


ROUTES: tuple[ModelRoute, ...] = (
    ModelRoute(
        "Qwen-VL-Chat",
        "Qwen/Qwen-VL-Chat",
        "qwen_vl",
        "pretrained=Qwen/Qwen-VL-Chat",
        "qwen_chat",
        needs="remote code; `[remote-code]` extra; its code targets transformers 4.32 (separate venv: "
        "`pip install transformers==4.32.0` after clsbench; whether lmms-eval 0.7.3 runs on it is unchecked)",
        verified=UNTESTED_REMOTE,
    ),
    _native("LLaVA-1.5-7B", "llava-hf/llava-1.5-7b-hf", "llava", TINY_LLAVA, "llava_v1.5_7b"),
    _native("LLaVA-1.6-7B", "llava-hf/llava-v1.6-vicuna-7b-hf", "llava_next", TINY_LLAVA_NEXT, "llava_next_vicuna_7b"),
    _native(
        "DeepSeek-VL-7B",
        "deepseek-community/deepseek-vl-7b-chat",
        "deepseek_vl",
        UNTESTED_NATIVE,
        "deepseek_vl_7b",
        needs="base install (transformers-native conversion of deepseek-ai/deepseek-vl-7b-chat)",
    ),
    ModelRoute(
        "Phi-3-Vision",
        "microsoft/Phi-3-vision-128k-instruct",
        "phi3v",
        "model_id_name=microsoft/Phi-3-vision-128k-instruct",
        "Phi-3-Vision",
        needs="remote code; `[remote-code]` extra; transformers 4.40.2 per its model card (separate venv); "
        "flash-attn, or its config's attention switched to eager",
        verified=UNTESTED_REMOTE,
    ),
    ModelRoute(
        "MiniCPM-Llama3-V-2.5",
        "openbmb/MiniCPM-Llama3-V-2_5",
        "clsbench_minicpm",
        "pretrained=openbmb/MiniCPM-Llama3-V-2_5,revision=REVIEWED_COMMIT",
        "MiniCPM-Llama3-V-2_5",
        needs="remote code; `[remote-code]` extra; transformers 4.40.0 per its model card (separate venv); "
        "`revision=` the 40-hex commit whose code you reviewed (required). "
        "lmms-eval's own `minicpm_v` expects the older 3-tuple `chat` API",
        verified=STAND_IN_MINICPM,
    ),
    ModelRoute(
        "InternVL2-8B",
        "OpenGVLab/InternVL2-8B",
        "internvl2",
        "pretrained=OpenGVLab/InternVL2-8B",
        "InternVL2-8B",
        needs="remote code; `[remote-code]` extra; transformers 4.37-4.44 per its model card (separate venv)",
        verified=UNTESTED_REMOTE,
    ),
    ModelRoute(
        "MiniCPM-V-2.6",
        "openbmb/MiniCPM-V-2_6",
        "clsbench_minicpm",
        "pretrained=openbmb/MiniCPM-V-2_6,revision=REVIEWED_COMMIT",
        "MiniCPM-V-2_6",
        needs="remote code; `[remote-code]` extra; transformers 4.40.0 per its model card (separate venv); "
        "`revision=` the 40-hex commit whose code you reviewed (required)",
        verified=STAND_IN_MINICPM,
    ),
    _native(
        "LLaVA-OneVision-7B",
        "llava-hf/llava-onevision-qwen2-7b-ov-hf",
        "llava_onevision",
        TINY_ONEVISION,
        "llava-onevision-qwen2-7b-ov-hf",
    ),
    _native("Qwen2-VL-7B", "Qwen/Qwen2-VL-7B-Instruct", "qwen2_vl", TINY_QWEN2_VL, "Qwen2-VL-7B-Instruct"),
    _native(
        "Qwen2.5-VL-7B",
        "Qwen/Qwen2.5-VL-7B-Instruct",
        "qwen2_5_vl",
        TINY_QWEN25_VL,
        "Qwen2.5-VL-7B-Instruct",
        in_paper=False,
    ),
    _native("Qwen3-VL-2B (current small)", "Qwen/Qwen3-VL-2B-Instruct", "qwen3_vl", TINY_QWEN3_VL, in_paper=False),
)


def vlmeval_models() -> dict[str, dict]:
    """``supported_VLM`` entries for the transformers-native checkpoints: generate and score variants."""
    entries: dict[str, dict] = {}
    for route in ROUTES:
        if route.architecture is None:
            continue
        for mode in VLMEVAL_MODE_SUFFIXES:  # the name grammar's modes: generate (the paper's) and score
            entries[vlmeval_model_name(route.checkpoint, mode)] = {"model_path": route.checkpoint, "mode": mode}
    return entries


MODE_NOTE = (
    "Which mode: every command below runs the paper's protocol, `mode=generate` (a greedy reply, read by "
    "clsbench's parser; lmms-eval's own model classes always do this): the numbers to set beside Table 2. "
    "`mode=score` is the faster alternative, a different protocol (swap `mode=generate` for `mode=score`; in "
    "VLMEvalKit the `clsbench_<model>-score` names): one forward pass per batch, the argmax over the option "
    "letters' next-token logits, which equals greedy generation's first token whenever that token is an option "
    "letter (tested on eight architectures), but never yields an unparseable reply. `clsbench report` keeps the "
    "two modes in separate rows, and delta.md compares each row with the paper per protocol."
)


def compact_listing(width: int = 110) -> str:
    """The same facts as the table, one block per model, wrapped for a terminal."""
    import textwrap

    def wrap(label: str, text: str, command: bool = False) -> list[str]:
        indent = " " * (len(label) + 4)
        lines = textwrap.wrap(text, width - len(indent), break_long_words=False, break_on_hyphens=False)
        joiner = " \\" if command else ""
        return [f"  {label}: {lines[0]}{joiner if len(lines) > 1 else ''}"] + [
            f"{indent}{line}{joiner if i < len(lines) - 2 else ''}" for i, line in enumerate(lines[1:])
        ]

    blocks = []
    for route in ROUTES:
        name = route.name if route.in_paper else f"{route.name} (not in the paper)"
        block = [
            name,
            *wrap("lmms-eval", route.lmms_command(), command=True),
            *wrap("VLMEvalKit", route.vlmeval_model.replace("`", "")),
            *wrap("needs", route.needs.replace("`", "")),
            *wrap("checked", route.verified.replace("`", "")),
        ]
        blocks.append("\n".join(block))
    return "\n\n".join(blocks) + "\n\n(`clsbench models --markdown` prints this as the README's table.)"


def markdown_table() -> str:
    """The README's coverage table."""
    lines = [
        "| Model | lmms-eval: `clsbench lmms ...` on `cls_mcq` | VLMEvalKit `--model` | Needs | Checked offline here |",
        "|---|---|---|---|---|",
    ]
    for route in ROUTES:
        name = route.name if route.in_paper else f"{route.name} *(not in the paper)*"
        lines.append(
            f"| {name} | `{route.lmms_command()}` | `{route.vlmeval_model.split(' ')[0]}`"
            + (route.vlmeval_model[len(route.vlmeval_model.split(" ")[0]) :].replace("(or VLMEvalKit's `", "(or `"))
            + f" | {route.needs} | {route.verified} |"
        )
    return "\n".join(lines)


# Size per checkpoint, for throughput projections (bench/gpu_throughput.py's Table 2 wall time): parameters in billions
# (the model cards' totals, vision tower included) and image tokens for a 500x375 photo as each model's processor
# makes them at its default settings (dynamic-resolution and tiling models: an estimate, rounded).
SIZES: dict[str, tuple[float, int]] = {
    "Qwen/Qwen-VL-Chat": (9.6, 256),
    "llava-hf/llava-1.5-7b-hf": (7.06, 576),
    "llava-hf/llava-v1.6-vicuna-7b-hf": (7.06, 2144),  # anyres: a 336 base view + 2x2 tiles, unpadded
    "deepseek-community/deepseek-vl-7b-chat": (7.3, 576),
    "microsoft/Phi-3-vision-128k-instruct": (4.2, 757),  # HD crops
    "openbmb/MiniCPM-Llama3-V-2_5": (8.5, 640),  # 96 query tokens per slice, up to 6 slices + overview
    "OpenGVLab/InternVL2-8B": (8.1, 1280),  # dynamic 448 px tiles (4) + thumbnail, 256 tokens each
    "openbmb/MiniCPM-V-2_6": (8.1, 640),
    "llava-hf/llava-onevision-qwen2-7b-ov-hf": (8.0, 2600),  # anyres_max_9, pooled tiles
    "Qwen/Qwen2-VL-7B-Instruct": (8.3, 234),  # 14 px patches, 2x2 merge: 13 x 18 merged patches
    "Qwen/Qwen2.5-VL-7B-Instruct": (8.3, 234),
    "Qwen/Qwen3-VL-2B-Instruct": (2.1, 192),  # 16 px patches, 2x2 merge
}
