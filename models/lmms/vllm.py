"""lmms-eval model ``clsbench_vllm``: ``clsbench_hf``'s three answer modes on a vLLM engine, for users who outgrow HF.

Written against vLLM's public offline API (``vllm.LLM``, ``SamplingParams``, ``RequestOutput``):

* ``generate``: greedy replies (``temperature=0``), read by the task's parser, as ``clsbench_hf``.
* ``score``: one step restricted to the question's option letters (``allowed_token_ids``: every
  spelling of each letter, ``A`` / ``▁A`` / ``ĠA``), greedy, so the reply is the letter with the
  highest logit; ``logprobs`` gives the letters' distribution for the decision log (vLLM computes
  them before the restriction, so they are the full-vocabulary probabilities ``clsbench_hf`` logs).
* ``loglik``: every option's class name appended to the chat prompt, scored with ``prompt_logprobs``;
  ``enable_prefix_caching`` (on by default) makes the shared image + question prefix cost one prefill
  per question, as ``clsbench_hf``'s prefix reuse. ``loglik_norm`` and ``cfg_weight`` as there.

The options and the question come from the prompt (:func:`clsbench.tasks.protocol.questions.prompt_parts`),
never from the task's documents. ``tensor_parallel_size`` and ``data_parallel_size`` go to ``vllm.LLM``;
``engine`` lets a test hand in a stand-in with the same ``generate`` API (vLLM needs a GPU).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from tqdm import tqdm

from clsbench.models.engine.answering import DecisionLog, loglik_record, score_record
from clsbench.models.engine.hf_vlm import VisualPrompt, chat_messages
from clsbench.models.engine.scoring import OptionScore, letter_token_ids
from clsbench.models.engine.settings import ModelSettings
from clsbench.tasks.protocol.draws import LETTERS
from clsbench.tasks.protocol.questions import prompt_parts


class ClsbenchVLLM(lmms):
    """Simple (non-chat) lmms-eval model over a vLLM engine."""

    is_simple = True

    def __init__(
        self,
        pretrained: str,
        mode: str = "generate",
        batch_size: int | str = 64,
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        enable_prefix_caching: bool = True,
        engine=None,
        **model_args,
    ) -> None:
        super().__init__()
        settings, engine_kwargs = ModelSettings.split({"mode": mode, **model_args})  # the rest goes to vllm.LLM
        self.settings = settings
        from transformers import AutoProcessor

        self.processor = AutoProcessor.from_pretrained(pretrained, trust_remote_code=settings.trust_remote_code)
        if settings.chat_template:
            self.processor.chat_template = settings.chat_template
        if engine is None:
            from vllm import LLM

            engine = LLM(
                model=pretrained,
                tensor_parallel_size=int(tensor_parallel_size),
                data_parallel_size=int(data_parallel_size),
                gpu_memory_utilization=float(gpu_memory_utilization),
                max_model_len=max_model_len,
                enable_prefix_caching=bool(enable_prefix_caching),
                trust_remote_code=settings.trust_remote_code,
                limit_mm_per_prompt={"image": 1},
                **engine_kwargs,
            )
        self.engine = engine
        self.mode = settings.mode
        self.batch_size_per_gpu = int(batch_size)
        self.system_prompt = settings.system_prompt
        self.max_new_tokens = settings.max_new_tokens
        self.loglik_norm = settings.loglik_norm
        self.cfg_weight = settings.cfg_weight
        self.loglik_context = settings.loglik_context
        self.tokenizer = self.processor.tokenizer
        self.letter_ids = letter_token_ids(self.tokenizer)
        self.letter_of = {token: letter for letter, ids in self.letter_ids.items() for token in ids}
        self.decision_log = DecisionLog(settings.log_dir, f"{pretrained}_{settings.mode}_vllm_rank{self.rank}")

    # --- prompts -------------------------------------------------------------------------------------

    def render(self, prompt: VisualPrompt, with_images: bool = True) -> dict:
        """vLLM's prompt for one turn: the chat-templated text (image placeholders in place) and its image."""
        messages = chat_messages(prompt, with_images, self.system_prompt, placeholders_only=True)
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        request = {"prompt": text}
        if with_images and prompt.images:
            images = list(prompt.images)
            request["multi_modal_data"] = {"image": images[0] if len(images) == 1 else images}
        return request

    @staticmethod
    def sampling(**settings):
        from vllm import SamplingParams

        return SamplingParams(**settings)

    # --- modes ---------------------------------------------------------------------------------------

    def _generate(self, prompts: list[VisualPrompt], limits: list[int], stops: list[Sequence[str]]) -> list[str]:
        requests = [self.render(prompt) for prompt in prompts]
        params = [
            self.sampling(temperature=0.0, max_tokens=limit, stop=list(stop) or None)
            for limit, stop in zip(limits, stops)
        ]
        outputs = self.engine.generate(requests, params, use_tqdm=False)
        return [output.outputs[0].text for output in outputs]

    def _score(self, prompts: list[VisualPrompt], meta: list[dict]) -> list[str]:
        requests, params, letter_sets = [], [], []
        for prompt, info in zip(prompts, meta):
            parts = prompt_parts(prompt.text)
            if parts is None:
                raise ValueError(f"clsbench_vllm score mode: {info} has no 'A. ...' option lines in its prompt")
            letters = LETTERS[: len(parts[1])]
            allowed = sorted({token for letter in letters for token in self.letter_ids[letter]})
            requests.append(self.render(prompt))
            params.append(
                self.sampling(temperature=0.0, max_tokens=1, allowed_token_ids=allowed, logprobs=len(allowed))
            )
            letter_sets.append(letters)
        outputs = self.engine.generate(requests, params, use_tqdm=False)
        replies = []
        for output, letters, info in zip(outputs, letter_sets, meta):
            completion = output.outputs[0]
            letter = self.letter_of[completion.token_ids[0]]
            probs = self._letter_probs(completion.logprobs[0] if completion.logprobs else {}, letters)
            total = sum(probs.values())
            confidence = probs.get(letter, 0.0) / total if total else None
            self._log(score_record(info, letter, probs, confidence, total if probs else None, engine="vllm"))
            replies.append(letter)
        return replies

    def _letter_probs(self, logprobs: dict, letters: str) -> dict[str, float]:
        """Full-vocabulary probability of each option letter (its spellings summed) among the returned logprobs."""
        probs: dict[str, float] = {}
        for token, entry in logprobs.items():
            letter = self.letter_of.get(int(token))
            if letter is not None and letter in letters:
                probs[letter] = probs.get(letter, 0.0) + math.exp(_value(entry))
        return probs

    def continuation_logprobs(self, prompt: VisualPrompt, names: Sequence[str], with_images: bool = True):
        """``(sum log p, n_tokens, is_greedy)`` of each name right after the chat prompt, via ``prompt_logprobs``.

        One request per name, all sharing the rendered prefix, so vLLM's prefix cache computes it once.
        """
        base = self.render(prompt, with_images)
        n_context = len(self.tokenizer.encode(base["prompt"], add_special_tokens=False))
        # the name's tokens, counted in text (the engine's ids also hold the expanded image placeholders)
        lengths = [
            len(self.tokenizer.encode(base["prompt"] + name, add_special_tokens=False)) - n_context for name in names
        ]
        requests = [{**base, "prompt": base["prompt"] + name} for name in names]
        params = self.sampling(temperature=0.0, max_tokens=1, prompt_logprobs=0)
        outputs = self.engine.generate(requests, [params] * len(requests), use_tqdm=False)
        results = []
        for name, n_tokens, output in zip(names, lengths, outputs):
            ids = list(output.prompt_token_ids)
            if n_tokens <= 0:
                raise ValueError(f"clsbench_vllm: the class name {name!r} adds no tokens to the prompt")
            total, greedy = 0.0, True
            for position in range(len(ids) - n_tokens, len(ids)):
                entry = output.prompt_logprobs[position][ids[position]]
                total += _value(entry)
                greedy = greedy and getattr(entry, "rank", 1) == 1
            results.append((total, n_tokens, greedy))
        return results

    def _loglik(self, prompt: VisualPrompt, info: dict) -> str:
        parts = prompt_parts(prompt.text)
        if parts is None:
            raise ValueError(f"clsbench_vllm loglik mode: {info} has no 'A. ...' option lines in its prompt")
        question, names = parts
        context = VisualPrompt(prompt.images, question if self.loglik_context == "question" else prompt.text)
        cond = self.continuation_logprobs(context, names)
        uncond = self.continuation_logprobs(context, names, with_images=False) if self.cfg_weight else None
        scores = [
            OptionScore(logprob=c[0], n_tokens=c[1], uncond_logprob=None if uncond is None else uncond[i][0])
            for i, c in enumerate(cond)
        ]
        record = loglik_record(info, names, scores, self.loglik_norm, self.cfg_weight, engine="vllm")
        self._log(record)
        return record["pred"]

    def _log(self, record: dict) -> None:
        self.decision_log.write(str(record.get("task", "all")), [record])

    # --- lmms-eval API -------------------------------------------------------------------------------

    def generate_until(self, requests: list[Instance]) -> list[str]:
        replies: list[str] = []
        progress = tqdm(total=len(requests), disable=self.rank != 0, desc=f"clsbench_vllm {self.mode}")
        size = max(1, self.batch_size_per_gpu) if self.mode != "loglik" else 1
        for start in range(0, len(requests), size):
            batch = requests[start : start + size]
            prompts, meta, limits, stops = [], [], [], []
            for request in batch:
                context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
                doc = self.task_dict[task][split][doc_id]  # only for doc_to_visual, as every lmms-eval simple model
                prompts.append(VisualPrompt(tuple(doc_to_visual(doc)), context))
                meta.append({"task": task, "doc_id": doc_id})
                limits.append(self.settings.reply_limit(gen_kwargs.get("max_new_tokens")))
                until = gen_kwargs.get("until") or ()
                stops.append((until,) if isinstance(until, str) else tuple(until))
            if self.mode == "generate":
                replies += self._generate(prompts, limits, stops)
            elif self.mode == "score":
                replies += self._score(prompts, meta)
            else:
                replies += [self._loglik(prompt, info) for prompt, info in zip(prompts, meta)]
            progress.update(len(batch))
        progress.close()
        return replies

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        results = []
        for request in requests:
            context, continuation, doc_to_visual, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            text = continuation if isinstance(continuation, str) else continuation(doc)
            logprob, _, greedy = self.continuation_logprobs(VisualPrompt(tuple(doc_to_visual(doc)), context), [text])[0]
            results.append((logprob, greedy))
        return results

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("clsbench_vllm answers single-turn questions")


def _value(entry) -> float:
    """A vLLM ``Logprob`` (``.logprob``) or a plain float."""
    return float(getattr(entry, "logprob", entry))
