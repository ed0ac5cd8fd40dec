"""lmms-eval model ``clsbench_hf``: any transformers image-text model, with letter scoring and option ranking.

Registered through the ``lmms_eval.models`` entry point (see ``clsbench.tasks.toolkits.lmms_plugin``),
so ``lmms-eval --model clsbench_hf --model_args pretrained=...,mode=score`` works with no flag.
Model args (lm-eval-harness style ``key=value``):

=================  ==========================================================================
``pretrained``     Hub id or local folder of a transformers-native checkpoint (required)
``mode``           ``generate`` (greedy reply), ``score`` (one forward per batch, argmax over the
                   option letters' next-token logits) or ``loglik`` (rank the options' class names
                   by log-likelihood given image and question)
``loglik_norm``    ``sum`` (default) or ``mean`` over the class name's tokens
``cfg_weight``     classifier-free guidance weight for ``loglik`` (0 = off)
``loglik_context`` ``question`` (default: the bare question, an open-ended query with no option
                   list) or ``prompt`` (the full multiple-choice prompt)
``log_dir``        where the letter distributions / option log-likelihoods go as JSONL, appended
                   (default ``clsbench_model_logs``; ``off``, ``none`` or ``false`` turns it off)
``num_workers``    input pipeline: threads that decode images and run the processor for the next
                   batches while the model runs this one (default ``auto``: 1 on GPU, 0 on CPU;
                   ``0`` = one batch after another, as before)
``answer_store``   where every computed reply is appended per batch and reused on rerun
                   (default ``$CLSBENCH_ANSWER_STORE``, else ``<log_dir or clsbench_model_logs>/answers``;
                   ``none`` turns it off;
                   see :mod:`clsbench.models.engine.answer_store`)
``dtype``          ``auto`` (bf16 on GPU, float32 on CPU), ``bfloat16``, ``float16``, ``float32``
``device``, ``device_map``, ``revision``, ``trust_remote_code``, ``attn_implementation``,
``chat_template`` (file or Jinja text), ``system_prompt``, ``max_new_tokens``, ``loglik_chunk``
``loglik_reuse``   ``true`` (default): one prefill over image and question, every option scored
                   from its KV cache; ``false``: each option re-encodes everything (reference)
``compile``        ``false`` (default), ``true`` or a torch.compile mode (``max-autotune``, ...): compile
                   the language model's forward with dynamic shapes (one graph for every batch
                   size and length; the first batches pay the compile time)
=================  ==========================================================================

The model answers from what the request carries, as lmms-eval's model guide asks: the image (through
the request's ``doc_to_visual``) and the prompt, whose ``A. ...`` lines give the options and whose
first line gives the question (:func:`clsbench.tasks.protocol.questions.prompt_parts`). It never reads
the options or the answer from the task's documents; only its decision log copies a document's
``answer``/``label`` when present, so ``correct`` can be logged beside each decision.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import torch
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from loguru import logger as eval_logger
from tqdm import tqdm

from clsbench.models.engine.answer_store import AnswerStore, answer_key
from clsbench.models.engine.answering import DecisionLog, Query, build_answerer
from clsbench.models.engine.hf_vlm import VisualPrompt
from clsbench.models.engine.settings import DEFAULT_MAX_NEW_TOKENS, TransformersSettings
from clsbench.tasks.protocol.questions import SampleError, prompt_parts
from clsbench.tasks.runtime.stores import weights_fingerprint

_LOG_ONLY = ("dataset", "sample_key", "label", "answer")


class ClsbenchHF(lmms):
    """Simple (non-chat) lmms-eval model over :class:`HFVisionLanguageModel`."""

    is_simple = True

    def __init__(
        self,
        pretrained: str,
        batch_size: int | str = 1,
        answer_store: str | None = "auto",
        num_workers: int | str = "auto",
        max_batch_size: int | None = None,  # passed by lmms-eval's CLI; batches here are fixed-size
        **model_args,
    ) -> None:
        super().__init__()
        settings, unknown = TransformersSettings.split(model_args)
        if unknown:
            raise ValueError(
                f"clsbench_hf: unknown model_args {sorted(unknown)}; known: {sorted(TransformersSettings.names())}"
            )
        from accelerate import Accelerator

        accelerator = Accelerator()
        if accelerator.num_processes > 1:  # data parallel: one model copy per process (per GPU, or on the CPU)
            if torch.cuda.is_available():
                settings = settings.replace(device=f"cuda:{accelerator.local_process_index}")
                settings = settings.replace(device_map=settings.device)
            else:
                settings = settings.replace(device=settings.device or "cpu", device_map=None)
            self._rank, self._world_size = accelerator.process_index, accelerator.num_processes
        self.accelerator = accelerator
        self.settings = settings
        self.mode = settings.mode
        local = Path(str(pretrained)).expanduser()
        identity = str(local.resolve()) if local.exists() else str(pretrained)
        self.answer_store = None
        folder = settings.answer_store_folder(answer_store)
        if folder is not None:
            short = hashlib.sha256(identity.encode()).hexdigest()[:8]  # one file per model location
            name = f"{local.name if local.exists() else pretrained}-{short}_{settings.mode}"
            # The lock is taken before the model loads: a second run on the same tasks is refused at once.
            self.answer_store = AnswerStore(folder, name, None, self._rank, run_scope(settings.log_dir)).hold()
        self.answerer = build_answerer(str(pretrained), settings)
        self.engine = self.answerer.engine
        self.batch_size_per_gpu = int(batch_size)
        self.decision_log = DecisionLog(settings.log_dir, f"{pretrained}_{settings.mode}_rank{self._rank}")
        self.inference_seconds = 0.0  # time inside the model, for throughput reports
        self.num_workers = (
            (1 if str(self.engine.device).startswith("cuda") else 0) if num_workers == "auto" else int(num_workers)
        )
        if self.answer_store is not None:
            template = str(self.engine.processor.chat_template).encode()
            self.answer_store.fingerprint = {
                "model": identity,  # the resolved path: the same weights by a relative path are the same model
                "weights": weights_fingerprint(
                    str(pretrained), settings.revision or getattr(self.engine.model.config, "_commit_hash", None)
                ),
                "dtype": str(self.engine.dtype),
                "mode": settings.mode,
                "settings": {
                    **settings.fingerprint(),
                    "chat_template_sha256": hashlib.sha256(template).hexdigest()[:16],
                },
            }

    @property
    def batch_size(self) -> int:
        return self.batch_size_per_gpu

    @property
    def device(self):
        return self.engine.input_device

    def _query(self, request: Instance) -> Query:
        context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
        doc = self.task_dict[task][split][doc_id]  # only for doc_to_visual, as every lmms-eval simple model
        parts = prompt_parts(context)
        meta = {"task": task, "doc_id": doc_id}
        meta.update({key: doc[key] for key in _LOG_ONLY if key in doc})  # for the decision log, never for answering
        until = gen_kwargs.get("until") or ()
        return Query(
            images=tuple(doc_to_visual(doc)),
            prompt=context,
            options=parts[1] if parts else None,
            question=parts[0] if parts else None,
            # the request's limit; the answerer applies the model args' max_new_tokens over it
            max_new_tokens=int(gen_kwargs.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS),
            stop=(until,) if isinstance(until, str) else tuple(until),
            meta=meta,
        )

    def _checked_query(self, requests: list[Instance], index: int) -> Query:
        """:meth:`_query`, and when its image cannot be read, the error of the task's first bad image in the
        split's order: the sample the CLIP baselines and the export name (requests run longest-first here)."""
        try:
            return self._query(requests[index])
        except SampleError as error:
            _, _, _, failing, task, split = requests[index].args
            earlier = sorted(
                (request for request in requests if request.args[4] == task and request.args[3] < failing),
                key=lambda request: request.args[3],
            )
            for request in earlier:  # only on failure, and only the documents before the failing one
                doc_to_visual, doc_id = request.args[2], request.args[3]
                try:
                    doc_to_visual(self.task_dict[task][split][doc_id])
                except SampleError as first:
                    raise first from None
            raise error

    def _key(self, request: Instance) -> str:
        context, gen_kwargs, _, doc_id, task, split = request.args
        doc = self.task_dict[task][split][doc_id]
        image = doc.get("image")
        data = [image["bytes"]] if isinstance(image, dict) and image.get("bytes") else []
        return answer_key(task, doc_id, context, None, data, self.reply_settings(gen_kwargs))

    def reply_settings(self, gen_kwargs: dict | None) -> dict | None:
        """The request's settings that change a generated reply, for its answer-store key (None in score and
        loglik modes, whose replies no generation setting changes): every generation argument lmms-eval passed,
        with the token limit this model applies and the stop strings as a list."""
        if self.mode != "generate":
            return None
        settings = dict(gen_kwargs or {})
        settings["max_new_tokens"] = self.settings.reply_limit(settings.get("max_new_tokens"))
        until = settings.get("until") or ()
        settings["until"] = [until] if isinstance(until, str) else list(until)
        return settings

    def generate_until(self, requests: list[Instance]) -> list[str]:
        """Replies in request order; requests are batched longest-first to waste little padding.

        Replies already in the answer store (an earlier, interrupted run) are reused; the rest are
        computed and appended to the store batch by batch.
        """
        if self.answer_store is None:
            return self._generate(requests, [None] * len(requests))
        with self.answer_store:
            return self._generate(requests, [self._key(request) for request in requests])

    def _generate(self, requests: list[Instance], keys: list[str | None]) -> list[str]:
        replies: list[str | None] = [None] * len(requests)
        for index, key in enumerate(keys):
            stored = self.answer_store.get(key) if key is not None else None
            if stored is not None:
                replies[index] = stored["reply"]
        reused = sum(reply is not None for reply in replies)
        if keys and keys[0] is not None:
            self.answer_store.check_writable(len(requests) - reused)  # before computing anything
        if reused and self.decision_log.folder is not None:  # a kill between store and log writes lost none
            stored = [self.answer_store.get(key) for key in keys if key is not None]
            records = [entry["record"] for entry in stored if entry and entry.get("record")]
            restored = self.decision_log.complete(records)
            if restored:
                eval_logger.info(f"clsbench_hf: {restored} decision records restored to the log from the answer store")
        if reused and self.rank == 0:
            print(
                f"clsbench_hf: {reused} of {len(requests)} replies reused from the answer store "
                f"{self.answer_store.path.parent}"
                + (" (read-only: read without a lock)" if self.answer_store.read_only else ""),
                file=sys.stderr,
                flush=True,
            )
        pending = [i for i in range(len(requests)) if replies[i] is None]
        lengths = dict(zip(pending, self._lengths([requests[i] for i in pending])))
        order = sorted(pending, key=lambda i: -lengths[i])  # similar lengths share a batch: less padding
        size = max(1, self.batch_size)  # loglik too: a batch of questions shares one prefill and one packed step
        progress = tqdm(total=len(requests), initial=reused, disable=self.rank != 0, desc=f"clsbench_hf {self.mode}")
        batches = [order[start : start + size] for start in range(0, len(order), size)]
        for batch, queries, inputs in self._prepared(requests, batches):
            began = time.perf_counter()
            answers = self.answerer.answer(queries, inputs)
            self.inference_seconds += time.perf_counter() - began
            for index, answer in zip(batch, answers):
                replies[index] = answer.text
                self.cache_hook.add_partial(
                    "generate_until", (requests[index].args[0], requests[index].args[1]), answer.text
                )
            if self.answer_store is not None:
                self.answer_store.add(
                    [
                        {
                            "key": keys[index],
                            "task": requests[index].args[4],
                            "doc_id": requests[index].args[3],
                            "reply": answer.text,
                            "record": answer.record,
                        }
                        for index, answer in zip(batch, answers)
                    ]
                )
            records = [answer.record for answer in answers if answer.record is not None]
            by_task: dict[str, list[dict]] = {}
            for record in records:
                by_task.setdefault(str(record.get("task", "all")), []).append(record)
            for task, task_records in by_task.items():
                self.decision_log.write(task, task_records)
            progress.update(len(batch))
        progress.close()
        if self.decision_log.folder is not None and self.mode != "generate":
            eval_logger.info(f"clsbench_hf: decision records in {self.decision_log.folder.resolve()}")
        return replies  # type: ignore[return-value]

    def _lengths(self, requests: list[Instance]) -> list[int]:
        """Each request's prompt length in tokens, estimated before any processor runs: text tokens (one batched
        tokenizer call) plus the image's token count from its size (read from the file header, not decoded)."""
        import io

        from PIL import Image

        contexts = [request.args[0] for request in requests]
        texts = (
            [len(ids) for ids in self.engine.tokenizer(contexts, add_special_tokens=False)["input_ids"]]
            if contexts
            else []
        )
        lengths = []
        for request, text in zip(requests, texts):
            _, _, _, doc_id, task, split = request.args
            image = self.task_dict[task][split][doc_id].get("image")
            tokens = 0
            if isinstance(image, dict) and image.get("bytes"):
                try:
                    with Image.open(io.BytesIO(image["bytes"])) as header:
                        tokens = self.engine.image_tokens(header.size)
                except (OSError, Image.DecompressionBombError):  # it fails with its name when it is decoded
                    pass
            lengths.append(text + tokens)
        return lengths

    def _prepared(self, requests: list[Instance], batches: list[list[int]]):
        """``(batch, queries, model inputs)`` in order; with ``num_workers`` the next batches are decoded and
        processed in threads while the caller runs the model on this one (results are identical)."""

        def prepare(batch: list[int]):
            queries = [self._checked_query(requests, i) for i in batch]
            return batch, queries, self.answerer.prepare(queries)

        if self.num_workers <= 0:
            for batch in batches:
                yield prepare(batch)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=self.num_workers, thread_name_prefix="clsbench-inputs") as pool:
            ahead = [pool.submit(prepare, batch) for batch in batches[: self.num_workers + 1]]
            for number in range(len(batches)):
                following = number + len(ahead)
                result = ahead.pop(0).result()
                if following < len(batches):
                    ahead.append(pool.submit(prepare, batches[following]))
                yield result

    @property
    def padding_fraction(self) -> float:
        """Share of prepared prompt tokens that were padding (length-aware batching keeps it small)."""
        return self.engine.padding_tokens / self.engine.prompt_tokens if self.engine.prompt_tokens else 0.0

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        """``(sum log p(continuation | image, context), is_greedy)`` per request, for loglikelihood tasks."""
        results = []
        for request in tqdm(requests, disable=self.rank != 0, desc="clsbench_hf loglikelihood"):
            context, continuation, doc_to_visual, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            text = continuation if isinstance(continuation, str) else continuation(doc)
            prompt = VisualPrompt(tuple(doc_to_visual(doc)), context)
            logprob, _, greedy = self.engine.continuation_scores(prompt, [text])[0]
            results.append((logprob, greedy))
        return results

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("clsbench_hf answers single-turn questions; multi-round generation is not supported")


def run_scope(log_dir: str | None, argv: list[str] | None = None) -> str | None:
    """The answer-store scope of this run: its ``--tasks`` (from lmms-eval's command line) and resolved log dir,
    hashed; None when the tasks are unknown (lmms-eval's Python API), which locks the whole model's store."""
    argv = sys.argv if argv is None else argv
    tasks = None
    for index, arg in enumerate(argv):
        if arg == "--tasks" and index + 1 < len(argv):
            tasks = argv[index + 1]
        elif arg.startswith("--tasks="):
            tasks = arg.split("=", 1)[1]
    if not tasks:
        return None
    names = sorted({name.strip() for name in tasks.split(",") if name.strip()})
    where = str(Path(log_dir).expanduser().resolve()) if log_dir else ""
    return hashlib.sha256(json.dumps([names, where]).encode()).hexdigest()[:12]
