"""VLMEvalKit model wrapper ``ClsbenchVLM``: the same engine and answer modes as lmms-eval's ``clsbench_hf``.

Imported only by :func:`clsbench.models.vlmeval.registration.register_models` (it needs ``vlmeval``). VLMEvalKit calls
``generate(message, dataset)`` one sample at a time with image paths and the prompt text; the
``score`` and ``loglik`` modes read the options and the question from the prompt's ``A. ...`` lines
(:func:`clsbench.tasks.protocol.questions.prompt_parts`), for our datasets and any other MCQ dataset.
"""

from __future__ import annotations

import os
from pathlib import Path

from vlmeval.vlm.base import BaseModel

from clsbench.models.engine.answering import DecisionLog, Query, build_answerer
from clsbench.models.engine.settings import TransformersSettings
from clsbench.tasks.data.samples import open_image
from clsbench.tasks.protocol.questions import prompt_parts


class ClsbenchVLM(BaseModel):
    """Any transformers image-text model for VLMEvalKit, in generate, score or loglik mode."""

    INTERLEAVE = False

    def __init__(self, model_path: str, use_vllm: bool = False, **model_args) -> None:
        super().__init__()
        if use_vllm:  # VLMEvalKit passes this to models whose name contains "Qwen2-VL"
            raise ValueError("ClsbenchVLM runs transformers models; use_vllm is not supported")
        settings, unknown = TransformersSettings.split(model_args)
        if unknown:
            raise ValueError(
                f"ClsbenchVLM: unknown model args {sorted(unknown)}; known: {sorted(TransformersSettings.names())}"
            )
        self.settings = settings
        self.answerer = build_answerer(model_path, settings)
        self.model_path = model_path
        self.mode = settings.mode
        # One file per rank (torchrun runs one process per GPU), appended, as clsbench_hf's logs.
        rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0)
        self.decision_log = DecisionLog(settings.log_dir, f"{model_path}_{settings.mode}_vlmeval_rank{rank}")

    def generate_inner(self, message, dataset=None) -> str:
        prompt = "\n".join(item["value"] for item in message if item["type"] == "text")
        paths = [item["value"] for item in message if item["type"] == "image"]
        # The log says which question (task = the VLMEvalKit dataset, doc_id = the row index, the image's file
        # name) and what was decided (pred, probs); the TSV holds its label and answer, for whoever joins them.
        doc_id = Path(paths[0]).stem if paths else ""
        where = {"task": dataset or "", "doc_id": doc_id}
        images = tuple(open_image(path, dataset=str(dataset), sample_key=doc_id or path) for path in paths)
        parts = prompt_parts(prompt)
        query = Query(
            images=images,
            prompt=prompt,
            options=parts[1] if parts else None,
            question=parts[0] if parts else None,
            max_new_tokens=self.settings.reply_limit(),
            meta=where,
        )
        reply = self.answerer.answer([query])[0]
        if reply.record is not None:
            self.decision_log.write(str(dataset or "all"), [reply.record])
        return reply.text
