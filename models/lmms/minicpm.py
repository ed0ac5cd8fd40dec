"""lmms-eval model ``clsbench_minicpm``: MiniCPM-Llama3-V-2.5 and MiniCPM-V-2.6 through their remote-code ``chat``.

These checkpoints exist only as remote code, so ``clsbench_hf`` cannot load them, and lmms-eval's
own ``minicpm_v`` unpacks a 3-tuple from ``chat`` (the MiniCPM-V 1/2 API) while 2.5 and 2.6
return a string. Both accept ``chat(image=<PIL>, msgs=[{"role": "user", "content": <text>}],
tokenizer=...)`` (2.6 moves the image into the message itself). Decoding is greedy
(``sampling=False`` with ``num_beams=1, repetition_penalty=1.0``: their non-sampling default is
a 3-beam search with a repetition penalty), generate mode only.

The model cards pin transformers 4.40.0; run this in a venv with that version (see README).

These checkpoints run their own Python code (``trust_remote_code=True``), so the code that runs must be
the code that was reviewed: a Hub id needs ``revision=<40-hex commit>`` (a branch or tag can move;
no reviewed commit is recorded in this package, so none is assumed). A local folder runs the code in it.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from tqdm import tqdm

from clsbench.models.engine.hf_vlm import cut_at_stop, resolve_dtype
from clsbench.models.engine.settings import DEFAULT_MAX_NEW_TOKENS


def check_remote_code_revision(pretrained: str, revision: str | None) -> None:
    """Refuse a Hub checkpoint without a pinned commit: its remote code would be whatever the branch holds today."""
    if Path(pretrained).expanduser().is_dir():
        return  # a local folder: the code in it is what runs
    if not revision or not re.fullmatch(r"[0-9a-f]{40}", str(revision)):
        raise ValueError(
            f"clsbench_minicpm: {pretrained} runs its own Python code (trust_remote_code=True), so pin the commit "
            f"whose code you reviewed: model_args revision=<40-hex commit> (got {revision!r}; a branch or tag can "
            "move). The commits are listed on the model's Hub page under 'Files and versions' > 'History'."
        )


class ClsbenchMiniCPM(lmms):
    """Greedy replies from a MiniCPM-V remote-code model, one question at a time."""

    is_simple = True

    def __init__(
        self,
        pretrained: str,
        device: str | None = None,
        dtype: str = "auto",
        revision: str | None = None,
        batch_size: int | str = 1,
        max_new_tokens: int | None = None,
        max_batch_size: int | None = None,
        **unknown,
    ) -> None:
        super().__init__()
        if unknown:
            raise ValueError(f"clsbench_minicpm: unknown model_args {sorted(unknown)}")
        if int(batch_size) != 1:
            raise ValueError("clsbench_minicpm: MiniCPM-V's chat() answers one question at a time; use --batch_size 1")
        check_remote_code_revision(str(pretrained), revision)
        from transformers import AutoModel, AutoTokenizer

        self._device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        kwargs = {"trust_remote_code": True, "revision": revision}
        # torch_dtype (not dtype): the transformers these checkpoints pin (4.40) predates the new name
        self.model = AutoModel.from_pretrained(pretrained, torch_dtype=resolve_dtype(dtype, self._device), **kwargs)
        self.model = self.model.eval().to(self._device)
        self.tokenizer = AutoTokenizer.from_pretrained(pretrained, **kwargs)
        self.max_new_tokens = max_new_tokens

    @property
    def batch_size(self) -> int:
        return 1

    def generate_until(self, requests: list[Instance]) -> list[str]:
        replies = []
        for request in tqdm(requests, disable=self.rank != 0, desc="clsbench_minicpm"):
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            images = doc_to_visual(doc)
            if len(images) != 1:
                raise ValueError(
                    f"clsbench_minicpm: {task} doc {doc_id} has {len(images)} images; MiniCPM-V's chat takes one"
                )
            reply = self.model.chat(
                image=images[0],
                msgs=[{"role": "user", "content": context}],
                tokenizer=self.tokenizer,
                sampling=False,
                num_beams=1,
                repetition_penalty=1.0,
                max_new_tokens=self.max_new_tokens or int(gen_kwargs.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)),
            )
            text = reply[0] if isinstance(reply, tuple) else reply  # MiniCPM-V 2.0 returned (text, context, ...)
            until = gen_kwargs.get("until") or ()
            text = cut_at_stop(str(text), (until,) if isinstance(until, str) else tuple(until))
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
            replies.append(text)
        return replies

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        raise NotImplementedError("clsbench_minicpm supports generate_until only (use clsbench_hf for scoring modes)")

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("clsbench_minicpm answers single-turn questions only")
