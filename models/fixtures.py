"""Tiny random-weight checkpoints of real architectures, built fully offline, for the tests and the demo.

LLaVA-1.5, LLaVA-NeXT, LLaVA-OneVision, Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Idefics3 and Gemma 3.

Tests and CI need a *real* multimodal architecture (so the real loaders, processors and
lmms-eval's built-in ``llava_hf`` model are exercised) without the Hugging Face Hub and
without gigabytes of weights. Everything here is created from config classes and the
``tokenizers`` library; nothing is downloaded. The output is garbage text, by design.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Sequence

__all__ = [
    "CHAT_TEMPLATE",
    "IMAGE_SIZE",
    "PATCH_SIZE",
    "QWEN_CHAT_TEMPLATE",
    "build_letter_prone",
    "build_tiny_gemma3",
    "build_tiny_idefics3",
    "build_tiny_llava",
    "build_tiny_llava_next",
    "build_tiny_llava_onevision",
    "build_tiny_qwen2_5_vl",
    "build_tiny_qwen2_vl",
    "build_tiny_qwen3_vl",
]

IMAGE_SIZE = 32  # pixels; 32 / 8 = 4x4 patches -> 16 image tokens per image (CLS dropped)
PATCH_SIZE = 8
HIDDEN = 64
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]  # ids 0..4, bytes follow
_MARKER = "clsbench_tiny.json"  # written last: its presence means the checkpoint is complete
_FORMAT_VERSION = 1

# llava-hf/llava-1.5 style ("USER: <image>\n... ASSISTANT:"). It must accept both message
# shapes lmms-eval produces: plain-string content (simple ``llava_hf`` path, via the
# tokenizer) and lists of {"type": "image"|"text", ...} parts (chat path, via the processor).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] + ' ' }}"
    "{% else %}"
    "{% for part in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for part in message['content'] | selectattr('type', 'equalto', 'text') %}{{ part['text'] + ' ' }}{% endfor %}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def _is_complete(path: pathlib.Path, seed: int, arch: str = "llava") -> bool:
    """A checkpoint is complete when the marker (written after every other file) matches."""
    try:
        meta = json.loads((path / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("seed") == seed and meta.get("version") == _FORMAT_VERSION and meta.get("arch", "llava") == arch


def _build_tokenizer(
    special_tokens: Sequence[str] = tuple(SPECIAL_TOKENS),
    chat_template: str = CHAT_TEMPLATE,
    *,
    bos_token: str | None = "<s>",
    eos_token: str = "</s>",
    pad_token: str = "<pad>",
    unk_token: str = "<unk>",
    extra_special_tokens: dict[str, str] | None = None,
):
    """Byte-level BPE with no merges: every UTF-8 byte is one token, so any text encodes
    and no vocabulary file is needed. Special tokens come first (ids 0..len-1); with a
    ``bos_token`` it is prepended like Llama tokenizers do (Qwen tokenizers have none)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    byte_chars = pre_tokenizers.ByteLevel.alphabet()  # the 256 printable stand-ins for bytes
    vocab = {tok: i for i, tok in enumerate(special_tokens)}
    vocab.update({ch: len(special_tokens) + i for i, ch in enumerate(sorted(byte_chars))})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=unk_token))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(special_tokens))
    if bos_token is not None:
        # Prepend <s> like Llama tokenizers do, so add_special_tokens=True behaves as usual.
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos_token} $A",
            pair=f"{bos_token} $A {bos_token} $B",
            special_tokens=[(bos_token, vocab[bos_token])],
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token=unk_token,
        bos_token=bos_token,
        eos_token=eos_token,
        pad_token=pad_token,
        extra_special_tokens=extra_special_tokens or {"image_token": "<image>"},
        padding_side="left",  # batched generation pads on the left
        model_max_length=8192,
        chat_template=chat_template,
    )


def tiny_clip_vision(image_size: int = IMAGE_SIZE, patch_size: int = PATCH_SIZE):
    """The tiny CLIP vision tower every LLaVA-family fixture uses (hidden 64, 2 layers)."""
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=image_size,
        patch_size=patch_size,
        projection_dim=HIDDEN,
    )


def tiny_text_config(config_class, vocab_size: int, *, bos: int, eos: int, pad: int, max_positions: int = 8192):
    """A tiny decoder config of a real class (Llama, Mistral, ...): hidden 64, 2 layers, grouped-query attention."""
    return config_class(
        vocab_size=vocab_size,
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
    )


def _save(dst: pathlib.Path, seed: int) -> None:
    """Create model + processor with seeded random init and save them into ``dst``."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        GenerationConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = _build_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vision = tiny_clip_vision()
    # byte tokens make 26-option prompts ~1-2k tokens long: 8192 positions
    text = tiny_text_config(LlamaConfig, len(tokenizer), bos=ids["<s>"], eos=ids["</s>"], pad=ids["<pad>"])
    n_patches = (IMAGE_SIZE // PATCH_SIZE) ** 2
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=ids["<image>"],
        image_seq_length=n_patches,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    # Random weights would happily emit <image>/<pad>/<s>/<unk>; an <image> id mid-generation
    # is confusing and special ids decode to nothing, so forbid them. Text stays garbage.
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        pad_token_id=ids["<pad>"],
        suppress_tokens=[ids[t] for t in ("<unk>", "<s>", "<pad>", "<image>")],
        do_sample=False,
        max_new_tokens=8,
    )
    model.save_pretrained(dst, safe_serialization=True)

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token; "default" strategy drops it again
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(dst)


def _fix_modes(root: pathlib.Path) -> None:
    """mkdtemp (and safetensors) create owner-only modes; give the files the usual umask modes."""
    umask = os.umask(0)
    os.umask(umask)
    for f in (root, *root.iterdir()):
        f.chmod((0o777 if f.is_dir() else 0o666) & ~umask)


def build_tiny_llava(out_dir: str | os.PathLike, seed: int = 0) -> pathlib.Path:
    """Save a random-weight LLaVA-1.5-architecture checkpoint (CLIP vision tower + Llama LM),
    its processor (image processor + byte-level tokenizer with a chat template) into out_dir,
    loadable offline by transformers' AutoProcessor / LlavaForConditionalGeneration and by
    lmms-eval's built-in `llava_hf` model. Idempotent: if out_dir already holds a complete
    checkpoint, return it without rebuilding.

    ~210k parameters, 32x32 px images, 16 image tokens per image. Same ``seed`` gives
    bit-identical weights. The build goes to a temporary sibling directory that is moved
    into place, so an interrupted or concurrent build never leaves a half-written
    checkpoint that looks complete.
    """
    return _build_atomically(out_dir, seed, "llava", _save)


def _build_atomically(out_dir: str | os.PathLike, seed: int, arch: str, save) -> pathlib.Path:
    """Run ``save(tmp_dir, seed)`` in a temporary sibling of out_dir, mark it complete, move it into place."""
    out = pathlib.Path(out_dir).resolve()
    if _is_complete(out, seed, arch):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        save(tmp, seed)
        (tmp / _MARKER).write_text(json.dumps({"seed": seed, "version": _FORMAT_VERSION, "arch": arch}))  # last
        _fix_modes(tmp)
        if _is_complete(out, seed, arch):  # a concurrent builder finished first
            return out
        try:
            os.rename(tmp, out)  # atomic; succeeds when out is absent or an empty directory
        except OSError:  # out holds other files (stale build, other seed): overwrite in place
            (out / _MARKER).unlink(missing_ok=True)
            shutil.copytree(tmp, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns(_MARKER))
            shutil.copy2(tmp / _MARKER, out / _MARKER)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# Qwen2-VL's ChatML ("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>...<|im_end|>"),
# without the default system prompt; it accepts string and list-of-parts content like CHAT_TEMPLATE.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
QWEN_PATCH_SIZE = 4  # 32x32 px -> 8x8 patches -> 2x2 merge -> 16 image tokens


# Vision towers of the two Qwen generations (2.5 adds windowed attention, SwiGLU and RMSNorm).
_QWEN_VISION = {
    "qwen2_vl": {"depth": 2, "embed_dim": 32, "hidden_size": HIDDEN, "num_heads": 4, "mlp_ratio": 2},
    "qwen2_5_vl": {
        "depth": 2,
        "hidden_size": 32,
        "out_hidden_size": HIDDEN,
        "intermediate_size": 64,
        "num_heads": 4,
        "window_size": 16,
        "fullatt_block_indexes": [1],
    },
}


def _save_chatml_model(model_class, config, seed: int, ids: dict[str, int], special_tokens, dst) -> None:
    """Seeded random weights, saved with greedy defaults that end on <|im_end|> and never emit other specials."""
    import torch
    from transformers import GenerationConfig

    torch.manual_seed(seed)
    model = model_class(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        suppress_tokens=[ids[t] for t in special_tokens if t != "<|im_end|>"],
        do_sample=False,
        max_new_tokens=8,
    )
    model.save_pretrained(dst, safe_serialization=True)


def _save_qwen(dst: pathlib.Path, seed: int, arch: str) -> None:
    """A Qwen2-VL or Qwen2.5-VL (ViT with 2x2 patch merger + Qwen2 LM with M-RoPE) and its processor."""
    import transformers
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    prefix = {"qwen2_vl": "Qwen2VL", "qwen2_5_vl": "Qwen2_5_VL"}[arch]
    config_class = getattr(transformers, f"{prefix}Config")
    model_class = getattr(transformers, f"{prefix}ForConditionalGeneration")
    processor_class = getattr(transformers, f"{prefix}Processor")
    tokenizer = _build_tokenizer(
        QWEN_SPECIAL_TOKENS,
        QWEN_CHAT_TEMPLATE,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"},
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    heads = 4
    config = config_class(
        vision_config={
            **_QWEN_VISION[arch],
            "patch_size": QWEN_PATCH_SIZE,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": HIDDEN,
            "intermediate_size": 2 * HIDDEN,
            "num_hidden_layers": 2,
            "num_attention_heads": heads,
            "num_key_value_heads": 2,
            "max_position_embeddings": 8192,
            # M-RoPE splits each head's rotary half (head_dim / 2 = 8) over time, height and width.
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    _save_chatml_model(model_class, config, seed, ids, QWEN_SPECIAL_TOKENS, dst)
    sizes = {
        "patch_size": QWEN_PATCH_SIZE,
        "merge_size": 2,
        "temporal_patch_size": 2,
        "min_pixels": IMAGE_SIZE * IMAGE_SIZE,
        "max_pixels": IMAGE_SIZE * IMAGE_SIZE,
    }
    processor = processor_class(
        image_processor=Qwen2VLImageProcessor(**sizes),  # Qwen2.5-VL checkpoints ship the same image processor
        video_processor=Qwen2VLVideoProcessor(**sizes),  # required by the processor class; videos are never used here
        tokenizer=tokenizer,
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    processor.save_pretrained(dst)


def build_tiny_qwen2_vl(out_dir: str | os.PathLike, seed: int = 0) -> pathlib.Path:
    """Save a random-weight Qwen2-VL-architecture checkpoint and processor into out_dir.

    The second architecture for tests: ChatML template, no BOS, dynamic-resolution patches with
    ``image_grid_thw`` and M-RoPE position ids (``mm_token_type_ids``), so code that only works
    for LLaVA's fixed image tokens fails here. Same guarantees as :func:`build_tiny_llava`.
    """
    return _build_atomically(out_dir, seed, "qwen2_vl", lambda dst, seed: _save_qwen(dst, seed, "qwen2_vl"))


def build_tiny_qwen2_5_vl(out_dir: str | os.PathLike, seed: int = 0) -> pathlib.Path:
    """Save a random-weight Qwen2.5-VL-architecture checkpoint (windowed-attention ViT) and processor into out_dir."""
    return _build_atomically(out_dir, seed, "qwen2_5_vl", lambda dst, seed: _save_qwen(dst, seed, "qwen2_5_vl"))


# LLaVA-OneVision's Qwen2 ChatML with the "<image>" placeholder of the -hf checkpoints.
ONEVISION_CHAT_TEMPLATE = QWEN_CHAT_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<image>\\n")
ONEVISION_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
ONEVISION_PINPOINTS = [[32, 32], [32, 64], [64, 32], [64, 64]]  # "anyres": a base view plus up to 2x2 tiles


def _save_llava_onevision(dst: pathlib.Path, seed: int) -> None:
    """A LLaVA-OneVision (SigLIP + Qwen2, anyres tiling) and its processor."""
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    tokenizer = _build_tokenizer(
        ONEVISION_SPECIAL_TOKENS,
        ONEVISION_CHAT_TEMPLATE,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<image>", "video_token": "<video>"},
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ONEVISION_SPECIAL_TOKENS}
    config = LlavaOnevisionConfig(
        vision_config={
            "model_type": "siglip_vision_model",
            "hidden_size": HIDDEN,
            "intermediate_size": 2 * HIDDEN,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
            "vision_use_head": False,
        },
        text_config={
            "model_type": "qwen2",
            "vocab_size": len(tokenizer),
            "hidden_size": HIDDEN,
            "intermediate_size": 2 * HIDDEN,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 8192,
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        image_token_index=ids["<image>"],
        video_token_index=ids["<video>"],
        image_grid_pinpoints=ONEVISION_PINPOINTS,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        vision_aspect_ratio="anyres_max_9",
    )
    _save_chatml_model(LlavaOnevisionForConditionalGeneration, config, seed, ids, ONEVISION_SPECIAL_TOKENS, dst)
    size = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=ONEVISION_PINPOINTS),
        video_processor=LlavaOnevisionVideoProcessor(size=size),  # required by the processor class; never used
        tokenizer=tokenizer,
        num_image_tokens=(IMAGE_SIZE // PATCH_SIZE) ** 2,
        vision_feature_select_strategy="full",
        chat_template=ONEVISION_CHAT_TEMPLATE,
    )
    processor.save_pretrained(dst)


def build_tiny_llava_onevision(out_dir: str | os.PathLike, seed: int = 0) -> pathlib.Path:
    """Save a random-weight LLaVA-OneVision-architecture checkpoint (anyres tiles, several pixel tensors per image)."""
    return _build_atomically(out_dir, seed, "llava_onevision", _save_llava_onevision)


# LLaVA-NeXT (1.6): LLaVA-1.5's CLIP + Llama with anyres tiles and an image_newline row separator.
NEXT_PINPOINTS = [[32, 32], [32, 64], [64, 32], [64, 64]]  # a base view plus up to 2x2 tiles of 32 px


def _save_llava_next(dst: pathlib.Path, seed: int) -> None:
    """A LLaVA-NeXT (CLIP + Llama, anyres tiling, llava-1.5 style template) and its processor."""
    import torch
    from transformers import (
        GenerationConfig,
        LlamaConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    tokenizer = _build_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vision = tiny_clip_vision()
    # byte tokens make 26-option prompts ~1-2k tokens long: 8192 positions
    text = tiny_text_config(LlamaConfig, len(tokenizer), bos=ids["<s>"], eos=ids["</s>"], pad=ids["<pad>"])
    config = LlavaNextConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=ids["<image>"],
        image_grid_pinpoints=NEXT_PINPOINTS,
        image_seq_length=(IMAGE_SIZE // PATCH_SIZE) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    torch.manual_seed(seed)
    model = LlavaNextForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        pad_token_id=ids["<pad>"],
        suppress_tokens=[ids[t] for t in ("<unk>", "<s>", "<pad>", "<image>")],
        do_sample=False,
        max_new_tokens=8,
    )
    model.save_pretrained(dst, safe_serialization=True)
    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_grid_pinpoints=NEXT_PINPOINTS,
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(dst)


def build_tiny_llava_next(out_dir: str | os.PathLike, seed: int = 0) -> pathlib.Path:
    """Save a random-weight LLaVA-NeXT-architecture checkpoint (anyres tiles + image_newline) and processor."""
    return _build_atomically(out_dir, seed, "llava_next", _save_llava_next)


QWEN3_PATCH_SIZE = 8  # 32x32 px -> 4x4 patches -> 2x2 merge -> 4 image tokens


def _save_qwen3_vl(dst: pathlib.Path, seed: int) -> None:
    """A Qwen3-VL (ViT with learned position embeddings + deepstack features, Qwen3 LM with interleaved M-RoPE)."""
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    tokenizer = _build_tokenizer(
        QWEN_SPECIAL_TOKENS,
        QWEN_CHAT_TEMPLATE,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"},
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    config = Qwen3VLConfig(
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 4,
            "out_hidden_size": HIDDEN,
            "patch_size": QWEN3_PATCH_SIZE,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "num_position_embeddings": 16,
            "deepstack_visual_indexes": [0],
        },
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": HIDDEN,
            "intermediate_size": 2 * HIDDEN,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "max_position_embeddings": 8192,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [2, 3, 3],
                "mrope_interleaved": True,
            },
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    _save_chatml_model(Qwen3VLForConditionalGeneration, config, seed, ids, QWEN_SPECIAL_TOKENS, dst)
    sizes = {
        "patch_size": QWEN3_PATCH_SIZE,
        "merge_size": 2,
        "temporal_patch_size": 2,
        "min_pixels": IMAGE_SIZE * IMAGE_SIZE,
        "max_pixels": IMAGE_SIZE * IMAGE_SIZE,
    }
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(**sizes),  # what Qwen3-VL checkpoints ship (auto class maps to it)
        video_processor=Qwen3VLVideoProcessor(**sizes),  # required by the processor class; never used
        tokenizer=tokenizer,
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    processor.save_pretrained(dst)


def build_tiny_qwen3_vl(out_dir: str | os.PathLike, seed: int = 0) -> pathlib.Path:
    """Save a random-weight Qwen3-VL-architecture checkpoint (deepstack ViT, interleaved M-RoPE) and processor."""
    return _build_atomically(out_dir, seed, "qwen3_vl", _save_qwen3_vl)


# Idefics3 / SmolVLM: "<|im_start|>User:<image>...<end_of_utterance>\nAssistant:"; the processor expands
# <image> into <fake_token_around_image><row_i_col_j><image>*n ... <global-img> tile sequences.
IDEFICS3_CHAT_TEMPLATE = (
    "{{ '<|im_start|>' }}"
    "{% for message in messages %}"
    "{{ message['role'] | capitalize }}{{ ':' }}"
    "{% if message['content'] is string %}{{ ' ' + message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>' }}"
    "{% elif part['type'] == 'text' %}{{ ' ' + part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<end_of_utterance>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
IDEFICS3_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<end_of_utterance>",
    "<fake_token_around_image>",
    "<image>",
    "<global-img>",
    *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)),
]


def _save_idefics3(dst: pathlib.Path, seed: int) -> None:
    """An Idefics3 / SmolVLM (SigLIP-style ViT, pixel-shuffle connector, Llama LM, image splitting), with processor."""
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
    )

    tokenizer = _build_tokenizer(
        IDEFICS3_SPECIAL_TOKENS,
        IDEFICS3_CHAT_TEMPLATE,
        bos_token=None,
        eos_token="<end_of_utterance>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<image>"},
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in IDEFICS3_SPECIAL_TOKENS}
    scale_factor = 2
    config = Idefics3Config(
        vision_config={
            "hidden_size": HIDDEN,
            "intermediate_size": 2 * HIDDEN,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": len(tokenizer),
            "hidden_size": HIDDEN,
            "intermediate_size": 2 * HIDDEN,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 8192,
            "bos_token_id": None,
            "eos_token_id": ids["<end_of_utterance>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        image_token_id=ids["<image>"],
        scale_factor=scale_factor,
        pad_token_id=ids["<|endoftext|>"],
    )
    # reuse the ChatML saver's conventions: greedy, stop at the end-of-turn token, never emit other specials
    eot = {"<|im_end|>": ids["<end_of_utterance>"], "<|endoftext|>": ids["<|endoftext|>"]}
    _save_chatml_model(
        Idefics3ForConditionalGeneration,
        config,
        seed,
        {**ids, **eot},
        [t for t in IDEFICS3_SPECIAL_TOKENS if t != "<end_of_utterance>"] + ["<|im_end|>"],
        dst,
    )
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(
            size={"longest_edge": 2 * IMAGE_SIZE},
            max_image_size={"longest_edge": IMAGE_SIZE},  # up to 2x2 tiles + global
        ),
        tokenizer=tokenizer,
        image_seq_len=(IMAGE_SIZE // PATCH_SIZE) ** 2 // scale_factor**2,
        chat_template=IDEFICS3_CHAT_TEMPLATE,
    )
    processor.save_pretrained(dst)


def build_tiny_idefics3(out_dir: str | os.PathLike, seed: int = 0) -> pathlib.Path:
    """Save a random-weight Idefics3 (SmolVLM) checkpoint (image splitting into tiles + global image) and processor."""
    return _build_atomically(out_dir, seed, "idefics3", _save_idefics3)


# Gemma 3: "<start_of_turn>user\n<start_of_image>...<end_of_turn>\n<start_of_turn>model\n" after the tokenizer's <bos>;
# the processor expands <start_of_image> into <start_of_image><image_soft_token>*n<end_of_image>.
GEMMA3_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<start_of_image>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
GEMMA3_SPECIAL_TOKENS = [
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
]
GEMMA3_MM_TOKENS = 4  # 4x4 SigLIP patches average-pooled to 2x2 image tokens


def _save_gemma3(dst: pathlib.Path, seed: int) -> None:
    """A Gemma 3 (SigLIP + pooled projector, Gemma 3 LM with sliding/global layers) and its processor."""
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessor,
        Gemma3Processor,
    )

    tokenizer = _build_tokenizer(
        GEMMA3_SPECIAL_TOKENS,
        GEMMA3_CHAT_TEMPLATE,
        bos_token="<bos>",
        eos_token="<end_of_turn>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={
            "image_token": "<image_soft_token>",
            "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
        },
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in GEMMA3_SPECIAL_TOKENS}
    config = Gemma3Config(
        vision_config={
            "model_type": "siglip_vision_model",
            "hidden_size": HIDDEN,
            "intermediate_size": 2 * HIDDEN,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
            "vision_use_head": False,
        },
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": HIDDEN,
            "intermediate_size": 2 * HIDDEN,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "query_pre_attn_scalar": 16,
            "sliding_window": 512,
            "layer_types": ["sliding_attention", "full_attention"],
            "max_position_embeddings": 8192,
            "bos_token_id": ids["<bos>"],
            "eos_token_id": ids["<end_of_turn>"],
            "pad_token_id": ids["<pad>"],
        },
        mm_tokens_per_image=GEMMA3_MM_TOKENS,
        boi_token_index=ids["<start_of_image>"],
        eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"],
    )
    eot = {"<|im_end|>": ids["<end_of_turn>"], "<|endoftext|>": ids["<pad>"]}
    _save_chatml_model(
        Gemma3ForConditionalGeneration,
        config,
        seed,
        {**ids, **eot},
        [t for t in GEMMA3_SPECIAL_TOKENS if t != "<end_of_turn>"] + ["<|im_end|>"],
        dst,
    )
    processor = Gemma3Processor(
        image_processor=Gemma3ImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        tokenizer=tokenizer,
        image_seq_length=GEMMA3_MM_TOKENS,
        chat_template=GEMMA3_CHAT_TEMPLATE,
    )
    processor.save_pretrained(dst)


def build_tiny_gemma3(out_dir: str | os.PathLike, seed: int = 0) -> pathlib.Path:
    """Save a random-weight Gemma 3 image-text checkpoint (bidirectional attention over image tokens) and processor."""
    return _build_atomically(out_dir, seed, "gemma3", _save_gemma3)


def build_letter_prone(src_dir: str | os.PathLike, out_dir: str | os.PathLike, scale: float = 20.0) -> pathlib.Path:
    """A copy of a tiny checkpoint whose LM-head rows for the letters A-Z are multiplied by ``scale``.

    A random model almost never starts its reply with a capital letter, so letter scoring could
    not be compared with greedy generation. Scaling those rows makes the first greedy token a
    letter for most prompts while *which* letter still depends on the prompt, so score-vs-greedy
    and batch-invariance tests compare real, varying decisions.
    """
    src = pathlib.Path(src_dir).resolve()
    src_meta = json.loads((src / _MARKER).read_text())
    arch = f"{src_meta.get('arch', 'llava')}+letters{scale:g}"

    def save(dst: pathlib.Path, seed: int) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from clsbench.models.engine.scoring import letter_token_ids

        processor = AutoProcessor.from_pretrained(src)
        model = AutoModelForImageTextToText.from_pretrained(src, dtype=torch.float32).eval()
        rows = sorted(i for ids in letter_token_ids(processor.tokenizer).values() for i in ids)
        with torch.no_grad():
            model.get_output_embeddings().weight[rows] *= scale
        model.save_pretrained(dst, safe_serialization=True)
        processor.save_pretrained(dst)

    return _build_atomically(out_dir, src_meta["seed"], arch, save)


if __name__ == "__main__":  # python models/tiny.py OUT_DIR [SEED]
    import sys

    print(build_tiny_llava(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0))
