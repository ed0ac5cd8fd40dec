"""Real prompt lengths: text tokens of the 26-option MCQ prompt per dataset, and image tokens per model family.

Text: for every dataset with a class list, ``--questions`` questions (sample keys 0..N-1, labels spread over the
classes, seed 0, the task's own wordings and options) are formatted as the tasks format them (``format_prompt``)
and counted with two real tokenizers that ship inside registry packages (:mod:`clsbench.models.real_tokenizers`):
Qwen2.5/Qwen2-VL's byte-level BPE and Mistral-7B's SentencePiece (LLaVA-NeXT-Mistral's base). ``bytes`` is the
UTF-8 length, which is also the token count of the project's tiny fixtures (a byte-level tokenizer with no merges).
``+template`` adds what the checkpoint's chat template puts around the text (Qwen2-VL's system prompt and ChatML
turns with one image placeholder; ``<s>[INST] <image>\\n... [/INST]``), the image's own tokens not included.

Image: the number of image tokens each family's processor makes, from its published geometry (LLaVA-1.5: 336 px
CLIP ViT-L/14; LLaVA-NeXT (v1.6-Mistral): 336 px tiles on five anyres grids plus a base view; Qwen2-VL: dynamic
resolution, 14 px patches merged 2x2, 3136..12845056 pixels), run through transformers' processors at a few image
sizes the datasets have.

    python bench/prompt_lengths.py [--questions 200]
"""

from __future__ import annotations

import argparse
import statistics

from PIL import Image
from transformers import Qwen2VLImageProcessor

from clsbench.models.engine.hf_vlm import VisualPrompt, chat_messages
from clsbench.models.real_tokenizers import QWEN2_VL_CHAT_TEMPLATE, load_mistral_tokenizer, load_qwen_tokenizer
from clsbench.tasks.protocol.draws import MAX_OPTIONS
from clsbench.tasks.protocol.questions import format_prompt, make_sample
from clsbench.tasks.protocol.registry import DATASETS

SIZES = [(224, 224), (500, 375), (512, 512), (800, 600)]


def prompts_for(key: str, count: int) -> list[str]:
    names = DATASETS[key].classnames
    step = max(1, len(names) // count)
    samples = [make_sample(key, str(i), (i * step) % len(names), names) for i in range(count)]
    return [format_prompt(sample.question, sample.options) for sample in samples]


def templated(tokenizer, text: str) -> int:
    messages = chat_messages(VisualPrompt((None,), text), placeholders_only=True)
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(rendered, add_special_tokens=True)["input_ids"]  # BOS where the tokenizer adds one (Mistral)
    image = {"<|image_pad|>", "<image>"}
    return sum(1 for token in tokenizer.convert_ids_to_tokens(ids) if token not in image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=200, help="questions per dataset")
    args = parser.parse_args()
    tokenizers = {"Qwen2.5 BPE": load_qwen_tokenizer(QWEN2_VL_CHAT_TEMPLATE), "Mistral-7B SP": load_mistral_tokenizer()}
    print(f"Text tokens of the {MAX_OPTIONS}-option MCQ prompt, mean (max) over {args.questions} questions per dataset")
    header = ["dataset", "bytes", *tokenizers, *(f"{name} +template" for name in tokenizers)]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for key, spec in DATASETS.items():
        if not spec.classnames:
            print(f"| {key} | class names come with the data; not counted here |")
            continue
        texts = prompts_for(key, args.questions)
        cells = [[len(text.encode("utf-8")) for text in texts]]
        cells += [[len(tok.encode(text, add_special_tokens=False)) for text in texts] for tok in tokenizers.values()]
        cells += [[templated(tok, text) for text in texts] for tok in tokenizers.values()]
        print(f"| {key} | " + " | ".join(f"{statistics.mean(c):.0f} ({max(c)})" for c in cells) + " |")

    print("\nImage tokens per image")
    qwen = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=28 * 28 * 16384)  # Qwen2-VL-7B-Instruct's range
    for width, height in SIZES:
        grid = qwen(images=[Image.new("RGB", (width, height))], return_tensors="pt")["image_grid_thw"][0]
        print(f"Qwen2-VL {width}x{height}: {int(grid.prod()) // 4} (+2 <|vision_start|>/<|vision_end|>)")
    next_processor = llava_next_processor(tokenizers["Mistral-7B SP"])
    for width, height in SIZES:
        ids = next_processor(text="<image>", images=[Image.new("RGB", (width, height))])["input_ids"][0]
        print(f"LLaVA-NeXT {width}x{height}: {ids.count(next_processor.image_token_id)}")
    print("LLaVA-1.5 (336 px, patch 14, CLS dropped): 576 at any size")


def llava_next_processor(tokenizer):
    """llava-hf/llava-v1.6-mistral-7b-hf's processor geometry (336 px CLIP ViT-L/14, five anyres grids)."""
    from transformers import AddedToken, LlavaNextImageProcessor, LlavaNextProcessor

    tokenizer.add_tokens([AddedToken("<image>", special=True, normalized=False)], special_tokens=True)
    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": 336},
        crop_size={"height": 336, "width": 336},
        image_grid_pinpoints=[[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
    )
    return LlavaNextProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=14, vision_feature_select_strategy="default"
    )


if __name__ == "__main__":
    main()
