"""Tiny random-weight LLaVA-1.5 checkpoint, built fully offline.

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

__all__ = ["CHAT_TEMPLATE", "IMAGE_SIZE", "PATCH_SIZE", "build_tiny_llava"]

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


def _is_complete(path: pathlib.Path, seed: int) -> bool:
    """A checkpoint is complete when the marker (written after every other file) matches."""
    try:
        meta = json.loads((path / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("seed") == seed and meta.get("version") == _FORMAT_VERSION


def _build_tokenizer():
    """Byte-level BPE with no merges: every UTF-8 byte is one token, so any text encodes
    and no vocabulary file is needed. Special tokens come first (ids 0..4)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    byte_chars = pre_tokenizers.ByteLevel.alphabet()  # the 256 printable stand-ins for bytes
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    vocab.update({ch: len(SPECIAL_TOKENS) + i for i, ch in enumerate(sorted(byte_chars))})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIAL_TOKENS)
    # Prepend <s> like Llama tokenizers do, so add_special_tokens=True behaves as usual.
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", vocab["<s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
        padding_side="left",  # batched generation pads on the left
        model_max_length=8192,
        chat_template=CHAT_TEMPLATE,
    )


def _save(dst: pathlib.Path, seed: int) -> None:
    """Create model + processor with seeded random init and save them into ``dst``."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        GenerationConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = _build_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vision = CLIPVisionConfig(
        hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=2, num_attention_heads=4,
        image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, projection_dim=HIDDEN,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=8192,  # byte tokens make 26-option prompts ~1-2k tokens long
        bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"],
    )
    n_patches = (IMAGE_SIZE // PATCH_SIZE) ** 2
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=ids["<image>"],
        image_seq_length=n_patches, vision_feature_select_strategy="default", vision_feature_layer=-2,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    # Random weights would happily emit <image>/<pad>/<s>/<unk>; an <image> id mid-generation
    # is confusing and special ids decode to nothing, so forbid them. Text stays garbage.
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"],
        suppress_tokens=[ids[t] for t in ("<unk>", "<s>", "<pad>", "<image>")],
        do_sample=False, max_new_tokens=8,
    )
    model.save_pretrained(dst, safe_serialization=True)

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    processor = LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token; "default" strategy drops it again
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(dst)
    (dst / _MARKER).write_text(json.dumps({"seed": seed, "version": _FORMAT_VERSION}))


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
    out = pathlib.Path(out_dir).resolve()
    if _is_complete(out, seed):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        _save(tmp, seed)
        umask = os.umask(0)
        os.umask(umask)
        for f in (tmp, *tmp.iterdir()):  # mkdtemp (and safetensors) create owner-only modes
            f.chmod((0o777 if f.is_dir() else 0o666) & ~umask)
        if _is_complete(out, seed):  # a concurrent builder finished first
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


if __name__ == "__main__":  # python models/tiny.py OUT_DIR [SEED]
    import sys

    print(build_tiny_llava(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0))
