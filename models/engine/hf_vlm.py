"""Any transformers-native image-text model behind three calls: generate, next-token logits, continuation log-probs.

Loaded with ``AutoModelForImageTextToText`` + ``AutoProcessor`` and prompted through the
processor's own chat template (images as content parts), so LLaVA-1.5/NeXT/OneVision ``-hf``,
Qwen2/2.5/3-VL, InternVL ``-hf``, DeepSeek-VL, Idefics3/SmolVLM, Gemma 3 and the like need no
per-model code. Toolkit adapters (lmms-eval, VLMEvalKit) sit on top of this and never touch the
model directly.

Why the calls look the way they do:

* batches are left-padded and next-token logits come from ``generate(max_new_tokens=1)``, i.e.
  from exactly the first step of greedy decoding (same input preparation: position ids from the
  padding mask, M-RoPE indices, cache positions), so the scored letter equals the first greedy
  token whenever that token is a letter, for any architecture (a plain ``forward`` numbers
  left-padded rows from the first pad; harmless for RoPE, not for absolute positions);
* continuations are scored as ``context + name`` with the context tokens identical for every
  option (right-padded names), so positions need no special care, and only the last positions'
  logits are computed (``logits_to_keep``), which keeps a 150k-token vocabulary affordable.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from clsbench.models.engine.scoring import OptionScore, letter_token_ids

_DTYPES = {
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "float32": torch.float32,
    "fp32": torch.float32,
}


@dataclass(frozen=True)
class VisualPrompt:
    """One user turn: images first, then the text (the layout every chat template here expects)."""

    images: tuple[Image.Image, ...]
    text: str


def chat_messages(
    prompt: VisualPrompt, with_images: bool = True, system_prompt: str | None = None, *, placeholders_only: bool = False
) -> list[dict]:
    """The chat for one turn: images first, then the text (``placeholders_only``: image parts without pixels,
    for rendering the template as text, as vLLM takes it). One definition for every engine."""
    images = prompt.images if with_images else ()
    content = [{"type": "image"} if placeholders_only else {"type": "image", "image": image} for image in images]
    content.append({"type": "text", "text": prompt.text})
    messages = [{"role": "user", "content": content}]
    if system_prompt:
        messages.insert(0, {"role": "system", "content": [{"type": "text", "text": system_prompt}]})
    return messages


def resolve_dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    """``auto``: bfloat16 on GPU, float32 on CPU (CPU bf16 matmuls are slow and lossy)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    try:
        return _DTYPES[str(dtype)]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; choose auto or one of {sorted(_DTYPES)}") from None


class HFVisionLanguageModel:
    """A loaded image-text model with its processor; stateless between calls."""

    def __init__(
        self,
        pretrained: str,
        *,
        device: str | None = None,
        dtype: str | torch.dtype | None = "auto",
        device_map: str | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
        attn_implementation: str | None = None,
        chat_template: str | None = None,
        system_prompt: str | None = None,
        compile: bool | str | None = False,
        compile_backend: str = "inductor",
    ) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.pretrained = pretrained
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = resolve_dtype(dtype, self.device)
        if device_map is None and self.device == "cuda":
            device_map = "auto"  # shard a large model over the visible GPUs
        load_kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
        self.model = AutoModelForImageTextToText.from_pretrained(
            pretrained, dtype=self.dtype, device_map=device_map, attn_implementation=attn_implementation, **load_kwargs
        ).eval()
        if device_map is None:
            self.model.to(self.device)
        self.processor = AutoProcessor.from_pretrained(pretrained, **load_kwargs)
        if chat_template:
            path = Path(chat_template)
            self.processor.chat_template = path.read_text("utf-8") if path.is_file() else chat_template
        if not getattr(self.processor, "chat_template", None):
            raise ValueError(
                f"{pretrained}: the processor has no chat template; pass chat_template=<file or Jinja text>"
            )
        self.system_prompt = system_prompt
        self.model_seconds = 0.0  # time inside the model's forward/generate calls (for the input-pipeline bench)
        self.prompt_tokens = 0  # tokens in prepared batches, padding included
        self.padding_tokens = 0
        self.tokenizer = self.processor.tokenizer
        self.pad_token_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        )
        self._letter_ids: dict[str, tuple[int, ...]] | None = None
        self._generation_config = self._greedy_config()
        self.compile_mode = compile_mode(compile)
        if self.compile_mode is not None:
            self._compile(self.compile_mode, compile_backend)

    def _compile(self, mode: str, backend: str = "inductor") -> None:
        """``torch.compile`` the language model's forward in place, with dynamic shapes: one graph serves every
        batch size and padded length (dynamo specialises only on sizes 0 and 1, so a one-token decoding step is a
        second graph). The language model is where the time goes (a 7B decoder against a 0.3B vision tower), and its
        inputs are plain embeddings, masks and positions for every architecture, where a vision tower's
        (Qwen2-VL's packed patches and variable grids) would break the graph."""
        decoder = self.decoder
        if backend != "inductor":  # modes are inductor's; other backends (aot_eager: quick CPU checks) take none
            decoder.compile(dynamic=True, backend=backend)
        else:
            decoder.compile(dynamic=True, mode=None if mode == "default" else mode)

    @property
    def decoder(self) -> torch.nn.Module:
        """The language model inside the image-text model (what :meth:`_compile` compiles)."""
        get = getattr(self.model, "get_decoder", None)
        decoder = get() if get is not None else None
        return decoder if isinstance(decoder, torch.nn.Module) else self.model

    @staticmethod
    def compiled_graphs() -> int:
        """Graphs torch.compile has built in this process so far (every compiled engine together)."""
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])

    @property
    def input_device(self) -> torch.device:
        return self.model.device

    @property
    def letter_ids(self) -> dict[str, tuple[int, ...]]:
        if self._letter_ids is None:
            self._letter_ids = letter_token_ids(self.tokenizer)
        return self._letter_ids

    def _greedy_config(self):
        """The model's generation config with sampling switched off (checkpoints often ship temperature/top_p)."""
        config = copy.deepcopy(self.model.generation_config)
        config.do_sample = False
        config.num_beams = 1
        for name in ("temperature", "top_p", "top_k", "min_p", "typical_p"):
            if hasattr(config, name):
                setattr(config, name, None)
        if config.pad_token_id is None:
            config.pad_token_id = self.pad_token_id
        return config

    def _config(self, **settings):
        config = copy.deepcopy(self._generation_config)
        for name, value in settings.items():
            setattr(config, name, value)
        return config

    def _messages(self, prompt: VisualPrompt, with_images: bool) -> list[dict]:
        return chat_messages(prompt, with_images, self.system_prompt)

    def encode(self, prompts: Sequence[VisualPrompt], *, with_images: bool = True):
        """Chat-templated, tokenized, left-padded inputs with pixel tensors, on the model's device."""
        inputs = self.processor.apply_chat_template(
            [self._messages(prompt, with_images) for prompt in prompts],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs={"padding": True, "padding_side": "left"},
        )
        return inputs.to(self.input_device).to(self.dtype)  # BatchFeature casts only floating tensors

    def prepare(self, prompts: Sequence[VisualPrompt]):
        """The model inputs for a batch, on the device: what :meth:`generate` and :meth:`next_token_logits` take as
        ``inputs``, so an input pipeline can build batch k+1 while the model runs batch k."""
        inputs = self.encode(prompts)
        mask = inputs["attention_mask"]
        self.padding_tokens += int(mask.numel() - mask.sum())
        self.prompt_tokens += int(mask.numel())
        return inputs

    @torch.inference_mode()
    def generate(
        self, prompts: Sequence[VisualPrompt], max_new_tokens: int, stop: Sequence[str] = (), inputs=None
    ) -> list[str]:
        """Greedy replies, cut at the first stop string (``inputs``: from :meth:`prepare`, else built here)."""
        inputs = self.prepare(prompts) if inputs is None else inputs
        began = time.perf_counter()
        output = self.model.generate(**inputs, generation_config=self._config(max_new_tokens=max_new_tokens))
        self.model_seconds += time.perf_counter() - began
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [cut_at_stop(text, stop) for text in texts]

    @torch.inference_mode()
    def next_token_logits(self, prompts: Sequence[VisualPrompt], inputs=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw next-token logits ``[batch, vocab]`` (float32, CPU) and the greedy first token ids.

        One forward pass: ``generate`` with one new token, so inputs are prepared exactly as for
        greedy generation (position ids from the padding mask, M-RoPE indices).
        """
        inputs = self.prepare(prompts) if inputs is None else inputs
        config = self._config(max_new_tokens=1, output_logits=True, return_dict_in_generate=True)
        began = time.perf_counter()
        output = self.model.generate(**inputs, generation_config=config)
        logits, greedy = output.logits[0].float().cpu(), output.sequences[:, -1].cpu()
        self.model_seconds += time.perf_counter() - began
        return logits, greedy

    def image_tokens(self, size: tuple[int, int]) -> int:
        """How many tokens an image of ``size`` (width, height) becomes, without running the processor:
        a fixed count for fixed-resolution towers (LLaVA), the merged patch grid for dynamic ones (Qwen2/2.5/3-VL)."""
        image_processor = getattr(self.processor, "image_processor", None)
        patch = getattr(image_processor, "patch_size", None)
        merge = getattr(image_processor, "merge_size", None)
        if isinstance(patch, int) and isinstance(merge, int):
            width, height = size
            low, high = _pixel_bounds(image_processor)
            factor = patch * merge
            resized_height, resized_width = _smart_resize(height, width, factor, low, high or width * height)
            return max(1, (resized_height // factor) * (resized_width // factor))
        return int(
            getattr(self.processor, "num_image_tokens", 0) or getattr(self.model.config, "image_seq_length", 0) or 0
        )

    @torch.inference_mode()
    def continuation_scores(
        self,
        prompt: VisualPrompt,
        continuations: Sequence[str],
        *,
        with_images: bool = True,
        chunk: int = 32,
        reuse_prefix: bool = True,
    ) -> list[tuple[float, int, bool]]:
        """``(sum log p, n_tokens, is_greedy)`` of each continuation right after the chat's generation prompt.

        With ``reuse_prefix`` (the default) image and question go through the model once and every
        continuation is scored from that KV cache (the vision tower runs once, not once per option);
        otherwise each continuation is scored with the whole context again. Both give the same numbers
        (tested to 1e-4 on several architectures, M-RoPE included). Where the model takes a packed mask
        (:attr:`packs_options`) the options share one row over the one cache, so nothing is copied; else
        (sliding windows, FlashAttention) each chunk of options gets its own copy of the cache per option,
        a memory-bound step (``chunk`` bounds it).
        """
        if reuse_prefix and self.packs_options:
            return self.batch_continuation_scores([prompt], [continuations], with_images=with_images)[0]
        context = self.encode([prompt], with_images=with_images)
        token_lists = [self.tokenizer.encode(text, add_special_tokens=False) for text in continuations]
        for text, ids in zip(continuations, token_lists):
            if not ids:
                raise ValueError(f"{self.pretrained}: the continuation {text!r} encodes to no tokens")
        began = time.perf_counter()
        prefix = self._prefix(context) if reuse_prefix else None
        results: list[tuple[float, int, bool]] = []
        for start in range(0, len(token_lists), max(1, chunk)):
            part = token_lists[start : start + max(1, chunk)]
            results += self._score_from_prefix(context, prefix, part) if prefix else self._score_chunk(context, part)
        self.model_seconds += time.perf_counter() - began
        return results

    def _continuation_tensors(self, token_lists: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """The continuations right-padded into one ``[count, width]`` batch, with their mask."""
        count, width = len(token_lists), max(len(ids) for ids in token_lists)
        device = self.input_device
        continuation = torch.full((count, width), self.pad_token_id, dtype=torch.long, device=device)
        mask = torch.zeros((count, width), dtype=torch.long, device=device)
        for row, ids in enumerate(token_lists):
            continuation[row, : len(ids)] = torch.tensor(ids, device=device)
            mask[row, : len(ids)] = 1
        return continuation, mask

    @staticmethod
    def _scores(logits: torch.Tensor, continuation: torch.Tensor, mask: torch.Tensor, token_lists):
        """``logits[:, j]`` predicts continuation token ``j``: summed log-probs, lengths, whether greedy."""
        logits = logits.float()
        logprobs = torch.log_softmax(logits, dim=-1).gather(-1, continuation.unsqueeze(-1)).squeeze(-1) * mask
        greedy = ((logits.argmax(dim=-1) == continuation) | (mask == 0)).all(dim=1)
        return [(float(logprobs[row].sum()), len(ids), bool(greedy[row])) for row, ids in enumerate(token_lists)]

    @functools.cached_property
    def _cache_argument(self) -> str:
        """``cache`` where the forward takes it (transformers 5 renames ``past_key_values``), else the old name."""
        import inspect

        return "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    def _prefix(self, context):
        """One forward over the context: its KV cache and the logits that predict the first continuation token."""
        inner = getattr(self.model, "model", None)
        if getattr(inner, "rope_deltas", None) is not None:
            inner.rope_deltas = None  # M-RoPE: a text-only context must not inherit the last image's deltas
        output = self.model(**context, use_cache=True, logits_to_keep=1)
        return output.past_key_values, output.logits[:, -1:].float()

    def _score_from_prefix(self, context, prefix, token_lists: list[list[int]]) -> list[tuple[float, int, bool]]:
        """Every continuation of a chunk in one batched step over a copy of the context's KV cache."""
        cache, first = prefix
        continuation, mask = self._continuation_tensors(token_lists)
        count, width = continuation.shape
        n_context = context["input_ids"].shape[1]
        cache = copy.deepcopy(cache)
        cache.batch_repeat_interleave(count)
        attention = torch.cat([context["attention_mask"].expand(count, -1), mask], dim=1)
        positions = torch.arange(n_context, n_context + width, device=continuation.device)
        output = self.model(
            input_ids=continuation,
            attention_mask=attention,
            **{self._cache_argument: cache},
            cache_position=positions,
            position_ids=self._continuation_positions(positions, count),
            use_cache=True,
        )
        # the context's last logits predict token 0; the continuation's position j - 1 predicts token j
        logits = torch.cat([first.expand(count, -1, -1), output.logits[:, :-1].float()], dim=1)
        return self._scores(logits, continuation, mask, token_lists)

    def _continuation_positions(self, positions: torch.Tensor, count: int) -> torch.Tensor | None:
        """Position ids after a cached context: plain ``n_context + j``, or for M-RoPE models (Qwen2/2.5/3-VL)
        the text positions shifted by the ``rope_deltas`` the context's forward computed."""
        inner = getattr(self.model, "model", None)
        if not hasattr(inner, "rope_deltas"):
            return positions.unsqueeze(0).expand(count, -1)
        text = positions.view(1, 1, -1).expand(3, count, -1)
        deltas = inner.rope_deltas  # None after a text-only context: text positions are the plain ones
        if deltas is None:
            return text
        return text + deltas.repeat_interleave(count // deltas.shape[0], dim=0).to(positions.device)

    def _score_chunk(self, context, token_lists: list[list[int]]) -> list[tuple[float, int, bool]]:
        """The plain path: context + continuation for every option, one forward over the whole batch."""
        continuation, mask = self._continuation_tensors(token_lists)
        count, width = continuation.shape
        n_context = context["input_ids"].shape[1]
        inputs = {}
        for key, value in context.items():
            if not isinstance(value, torch.Tensor):
                inputs[key] = value
            elif value.shape[:2] == (1, n_context):  # per-token tensors: input ids, masks, token types
                tail = (
                    continuation if key == "input_ids" else mask if key == "attention_mask" else torch.zeros_like(mask)
                )
                inputs[key] = torch.cat([value.expand(count, -1), tail.to(value.dtype)], dim=1)
            else:  # per-image tensors (pixel values, grids, sizes): one copy of the image per row
                inputs[key] = torch.cat([value] * count, dim=0)
        try:
            logits = self.model(**inputs, logits_to_keep=width + 1).logits
        except TypeError:  # a model without logits_to_keep: slice afterwards
            logits = self.model(**inputs).logits
        # position n_context - 1 + j predicts continuation token j
        return self._scores(logits[:, -(width + 1) : -1], continuation, mask, token_lists)

    @functools.cached_property
    def packs_options(self) -> bool:
        """Whether :meth:`batch_continuation_scores` can pack a question's options into one row: a custom 4D mask
        needs ``sdpa`` or ``eager`` attention, and full attention in every layer (a sliding window would not see
        the packed mask's window)."""
        text = self.model.config.get_text_config()
        implementation = getattr(text, "_attn_implementation", None) or getattr(
            self.model.config, "_attn_implementation", None
        )
        if implementation not in ("sdpa", "eager"):
            return False
        layer_types = getattr(text, "layer_types", None)
        if layer_types is not None:
            return all(kind == "full_attention" for kind in layer_types)
        return not getattr(text, "sliding_window", None) or getattr(text, "use_sliding_window", True) is False

    @torch.inference_mode()
    def batch_continuation_scores(
        self, prompts: Sequence[VisualPrompt], continuations: Sequence[Sequence[str]], *, with_images: bool = True
    ) -> list[list[tuple[float, int, bool]]]:
        """:meth:`continuation_scores` for a batch of questions in two forwards: one prefill over the left-padded
        contexts, then every question's continuations packed one after another into one row, each seeing the
        context and its own earlier tokens only (a 4D mask; positions restart after the context for each), so no
        KV cache is copied. The same numbers as one question at a time (tested to 1e-4, M-RoPE included); falls
        back to that where the model cannot take the packed mask (:attr:`packs_options`)."""
        if not self.packs_options:
            return [self.continuation_scores(p, c, with_images=with_images) for p, c in zip(prompts, continuations)]
        token_lists = [
            [self.tokenizer.encode(text, add_special_tokens=False) for text in texts] for texts in continuations
        ]
        for texts, lists in zip(continuations, token_lists):
            for text, ids in zip(texts, lists):
                if not ids:
                    raise ValueError(f"{self.pretrained}: the continuation {text!r} encodes to no tokens")
        context = self.encode(prompts, with_images=with_images)
        began = time.perf_counter()
        cache, first = self._prefix(context)
        device = self.input_device
        count, n_context = context["input_ids"].shape
        width = max(sum(len(ids) for ids in lists) for lists in token_lists)
        ids = torch.full((count, width), self.pad_token_id, dtype=torch.long)
        offsets = torch.zeros((count, width), dtype=torch.long)  # each token's place within its continuation
        segments = torch.full((count, width), -1, dtype=torch.long)  # which continuation (-1: padding)
        for row, lists in enumerate(token_lists):
            at = 0
            for number, tokens in enumerate(lists):
                ids[row, at : at + len(tokens)] = torch.tensor(tokens)
                offsets[row, at : at + len(tokens)] = torch.arange(len(tokens))
                segments[row, at : at + len(tokens)] = number
                at += len(tokens)
        ids, offsets, segments = ids.to(device), offsets.to(device), segments.to(device)
        causal = torch.ones((width, width), dtype=torch.bool, device=device).tril()
        packed = (segments[:, :, None] == segments[:, None, :]) & causal  # padding sees padding: no empty row
        seen = context["attention_mask"].bool()[:, None, :].expand(count, width, n_context)
        allowed = torch.cat([seen, packed], dim=2)[:, None]  # [count, 1, width, n_context + width]
        implementation = getattr(self.model.config.get_text_config(), "_attn_implementation", None)
        if implementation == "eager":  # eager attention adds the mask
            mask = torch.zeros(allowed.shape, dtype=self.dtype, device=device)
            mask = mask.masked_fill(~allowed, torch.finfo(self.dtype).min)
        else:
            mask = allowed
        output = self.model(
            input_ids=ids,
            attention_mask=mask,
            **{self._cache_argument: cache},
            cache_position=torch.arange(n_context, n_context + width, device=device),
            position_ids=self._packed_positions(context, offsets),
            use_cache=True,
        )
        del cache
        results: list[list[tuple[float, int, bool]]] = []
        for row, lists in enumerate(token_lists):
            used = sum(len(tokens) for tokens in lists)
            # a continuation's first token is predicted by the context's last logits, token j by token j - 1's
            logits = output.logits[row, :used].float()
            predictors = torch.cat([first[row], logits[:-1]], dim=0)
            starts = offsets[row, :used] == 0
            predictors[starts] = first[row, 0]
            logprobs = torch.log_softmax(predictors, dim=-1).gather(-1, ids[row, :used, None]).squeeze(-1)
            hits = predictors.argmax(dim=-1) == ids[row, :used]
            scores, at = [], 0
            for tokens in lists:
                part = slice(at, at + len(tokens))
                scores.append((float(logprobs[part].sum()), len(tokens), bool(hits[part].all())))
                at += len(tokens)
            results.append(scores)
        self.model_seconds += time.perf_counter() - began
        return results

    def _packed_positions(self, context, offsets: torch.Tensor) -> torch.Tensor:
        """Positions of packed continuation tokens after a left-padded context batch: ``n_context + offset``
        (the prefill numbered the padding too), or for M-RoPE models the real length plus offset shifted by
        the prefill's ``rope_deltas`` (which count real tokens only), as greedy decoding numbers them."""
        count, n_context = context["input_ids"].shape
        inner = getattr(self.model, "model", None)
        if not hasattr(inner, "rope_deltas"):
            return n_context + offsets
        deltas = inner.rope_deltas
        if deltas is None:  # a text-only context: the prefill numbered every place, padding included
            return (n_context + offsets).unsqueeze(0).expand(3, -1, -1)
        lengths = context["attention_mask"].sum(dim=1, keepdim=True).to(offsets.device)
        text = lengths + offsets + deltas.reshape(count, 1).to(offsets.device)
        return text.unsqueeze(0).expand(3, -1, -1)

    def batch_option_scores(
        self, prompts: Sequence[VisualPrompt], names: Sequence[Sequence[str]], *, cfg_weight: float = 0.0
    ) -> list[list[OptionScore]]:
        """:meth:`option_scores` for a batch of questions, through :meth:`batch_continuation_scores`."""
        cond = self.batch_continuation_scores(prompts, names)
        uncond = self.batch_continuation_scores(prompts, names, with_images=False) if cfg_weight else None
        return [
            [
                OptionScore(logprob=c[0], n_tokens=c[1], uncond_logprob=None if uncond is None else uncond[q][i][0])
                for i, c in enumerate(question)
            ]
            for q, question in enumerate(cond)
        ]

    def option_scores(
        self,
        prompt: VisualPrompt,
        names: Sequence[str],
        *,
        cfg_weight: float = 0.0,
        chunk: int = 32,
        reuse_prefix: bool = True,
    ) -> list[OptionScore]:
        """Log-likelihood of each class name as the answer; with a guidance weight also without the image."""
        cond = self.continuation_scores(prompt, names, chunk=chunk, reuse_prefix=reuse_prefix)
        uncond = (
            self.continuation_scores(prompt, names, with_images=False, chunk=chunk, reuse_prefix=reuse_prefix)
            if cfg_weight
            else None
        )
        return [
            OptionScore(logprob=c[0], n_tokens=c[1], uncond_logprob=None if uncond is None else uncond[i][0])
            for i, c in enumerate(cond)
        ]


def _pixel_bounds(image_processor) -> tuple[int, int | None]:
    """A dynamic-resolution processor's pixel range: ``min_pixels``/``max_pixels`` where set, else its ``size``
    (transformers 5 keeps them only as ``size["shortest_edge"]`` / ``size["longest_edge"]``, in pixels)."""
    size = getattr(image_processor, "size", None)
    get = size.get if isinstance(size, dict) else (lambda key: getattr(size, key, None))
    low = getattr(image_processor, "min_pixels", None) or get("min_pixels") or get("shortest_edge") or 0
    high = getattr(image_processor, "max_pixels", None) or get("max_pixels") or get("longest_edge")
    return int(low), int(high) if high else None


def _smart_resize(height: int, width: int, factor: int, low: int, high: int) -> tuple[int, int]:
    """Qwen2-VL's resize: both sides a multiple of ``factor`` (patch x merge), the area clamped to [low, high]."""
    resized_height = max(factor, round(height / factor) * factor)
    resized_width = max(factor, round(width / factor) * factor)
    if resized_height * resized_width > high:
        beta = math.sqrt(height * width / high)
        resized_height = max(factor, math.floor(height / beta / factor) * factor)
        resized_width = max(factor, math.floor(width / beta / factor) * factor)
    elif resized_height * resized_width < low:
        beta = math.sqrt(low / (height * width))
        resized_height = math.ceil(height * beta / factor) * factor
        resized_width = math.ceil(width * beta / factor) * factor
    return resized_height, resized_width


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    for marker in stop:
        if marker:
            text = text.split(marker, 1)[0]
    return text


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_mode(value: bool | str | None) -> str | None:
    """The ``compile`` model argument: off (``false``, ``none``, ``0``, the default), ``true`` (= ``default``) or one
    of torch.compile's modes; None when off."""
    if value is None or value is False:
        return None
    text = str(value).strip().lower()
    if text in ("", "false", "none", "off", "0", "no"):
        return None
    if text in ("true", "on", "1", "yes"):
        return "default"
    if text in COMPILE_MODES:
        return text
    raise ValueError(f"compile must be true, false or one of {COMPILE_MODES}, got {value!r}")
