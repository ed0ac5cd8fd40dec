"""VLMEvalKit model wrapper ``ClsbenchVLM``: the same engine and answer modes as lmms-eval's ``clsbench_hf``.

Imported only by :func:`clsbench.tasks.vlmeval.register` (it needs ``vlmeval``). VLMEvalKit calls
``generate(message, dataset)`` one sample at a time with image paths and the prompt text; the
clsbench datasets' text part carries the question and options (``clsbench`` key), which
``score`` and ``loglik`` modes need. For other MCQ datasets ``score`` reads the ``A. ...`` lines.
"""

from __future__ import annotations

from clsbench.tasks.mcq import open_image
from vlmeval.vlm.base import BaseModel

from .answering import DecisionLog, Query, build_answerer

DEFAULT_LOG_DIR = "clsbench_model_logs"


class ClsbenchVLM(BaseModel):
    """Any transformers image-text model for VLMEvalKit, in generate, score or loglik mode."""

    INTERLEAVE = False

    def __init__(self, model_path: str, mode: str = "generate", log_dir: str | None = DEFAULT_LOG_DIR,
                 max_new_tokens: int = 16, use_vllm: bool = False, **settings) -> None:
        super().__init__()
        if use_vllm:  # VLMEvalKit passes this to models whose name contains "Qwen2-VL"
            raise ValueError("ClsbenchVLM runs transformers models; use_vllm is not supported")
        self.answerer = build_answerer(model_path, mode, max_new_tokens=max_new_tokens, **settings)
        self.model_path = model_path
        self.mode = mode
        off = log_dir is None or str(log_dir).lower() in ("", "none", "false")
        self.decision_log = DecisionLog(None if off else log_dir, f"{model_path}_{mode}_vlmeval")

    def generate_inner(self, message, dataset=None) -> str:
        meta = next((item["clsbench"] for item in message if item["type"] == "text" and "clsbench" in item), {})
        where = {"task": dataset or "", "dataset": meta.get("dataset", dataset), "sample_key": meta.get("sample_key", "?")}
        images = tuple(
            open_image(item["value"], dataset=str(where["dataset"]), sample_key=str(where["sample_key"]))
            for item in message if item["type"] == "image"
        )
        query = Query(
            images=images,
            prompt="\n".join(item["value"] for item in message if item["type"] == "text"),
            options=tuple(meta["options"]) if meta.get("options") else None,
            question=meta.get("question"),
            max_new_tokens=self.answerer.max_new_tokens or 16,
            meta={**where, **({"index": meta["index"]} if "index" in meta else {})},
        )
        reply = self.answerer.answer([query])[0]
        if reply.record is not None:
            self.decision_log.write(str(dataset or "all"), [reply.record])
        return reply.text
