"""Measured per-question costs of the answer modes, and the one projection of a run's wall time from them.

One table (:data:`MEASURED`) holds every throughput figure a projection may use, each with where, when and how it
was measured; one function (:func:`project`) scales a measured rate to other models by parameters x prompt tokens
(the prefill's FLOPs per question) and adds up the hours on N GPUs. ``bench/gpu_throughput.py`` projects its own
measured rows with it (``table2_hours_8gpu=``), and ``clsbench plan`` projects :data:`MEASURED`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clsbench.models.catalog import ROUTES, SIZES, ModelRoute
from clsbench.tasks.protocol.registry import paper_datasets

GPUS = 8  # one node, as the paper's Table 2 projection assumes


@dataclass(frozen=True)
class MeasuredRate:
    """Questions per second for one answer mode on one device, with the model size and prompt length behind it."""

    mode: str  # clsbench_hf's mode: generate, score, loglik
    questions_per_s: float
    params_billions: float  # the measured model's parameters
    prompt_tokens: float  # per question, image tokens included
    image_tokens: int
    device: str  # "GPU: one NVIDIA H200" or "CPU: ..."
    setting: str  # what ran: shape, dtype, attention, batch, what the mode did
    source: str  # where the figure is recorded
    date: str  # when it was measured (ISO date)
    batch_size: int  # questions per forward pass in the measured run (a projection holds only at this batch)


# Issue 30's run of clsbench 0.3's bench/gpu_throughput.py (models/README "Throughput" has another run of the same
# bench: score 27.8, generate 14.5): LLaVA-1.5-7B shapes
# with random weights, bf16, sdpa, batch 16, torch 2.11, transformers 5.17. Its byte-level test tokenizer made
# ~1,050 prompt tokens per question (576 image + ~474 text, where a real tokenizer makes ~160-230 text tokens:
# README "Real tokenizers"), so projections from it overstate the text part of the prefill.
_H200 = "GPU: one NVIDIA H200"
_LLAVA_7B = dict(params_billions=SIZES["llava-hf/llava-1.5-7b-hf"][0], prompt_tokens=1050.0, image_tokens=576)
_WHEN = "run between 2026-11-30 and 2026-12-04 (clsbench 0.3; issue 30 gives no day)"
_ISSUE_30 = "issue 30's table (clsbench 0.3's bench/gpu_throughput.py, one run)"
MEASURED: dict[str, MeasuredRate] = {
    "score": MeasuredRate(
        "score",
        27.5,
        **_LLAVA_7B,
        device=_H200,
        setting="LLaVA-1.5-7B shape, bf16, sdpa, batch 16, input pipeline on (the GPU default); "
        "26.2 with it off, the bare forward 27.7",
        source=_ISSUE_30,
        date=_WHEN,
        batch_size=16,
    ),
    "generate": MeasuredRate(
        "generate",
        17.6,
        **_LLAVA_7B,
        device=_H200,
        setting="LLaVA-1.5-7B shape, bf16, sdpa, batch 16, 16 new tokens (the tasks' max_new_tokens)",
        source=_ISSUE_30,
        date=_WHEN,
        batch_size=16,
    ),
    "loglik": MeasuredRate(
        "loglik",
        10.3,
        **_LLAVA_7B,
        device=_H200,
        setting="LLaVA-1.5-7B shape, bf16, sdpa, 26 options from one prefill, one question at a time (0.4's "
        "batched loglik not yet measured on a GPU: an upper bound on its time)",
        source=_ISSUE_30,
        date=_WHEN,
        batch_size=1,
    ),
}


@dataclass(frozen=True)
class Projection:
    """Hours per model (data parallel over ``gpus``) for ``questions`` questions each, and their sum."""

    questions: int
    gpus: int
    model_hours: dict[str, float]  # the route's name -> hours on the node
    rates: dict[str, float]  # the route's name -> projected questions/s per GPU

    @property
    def hours(self) -> float:
        return sum(self.model_hours.values())


def paper_routes() -> list[ModelRoute]:
    """The paper's MLLMs (Table 2's rows), in the catalog's order."""
    return [route for route in ROUTES if route.in_paper]


def scaled_rate(
    questions_per_s: float,
    params_billions: float,
    prompt_tokens: float,
    image_tokens: int,
    checkpoint: str,
    text_tokens: float | None = None,
) -> float:
    """A measured rate carried to another checkpoint by parameters x prompt tokens (the prefill's share of FLOPs):
    its parameters and its image tokens for a 500x375 photo from :data:`clsbench.models.catalog.SIZES`, with the
    measured text tokens unless ``text_tokens`` is given."""
    billions, images = SIZES[checkpoint]
    text = prompt_tokens - image_tokens if text_tokens is None else text_tokens
    return questions_per_s * (params_billions * prompt_tokens) / (billions * (text + images))


def project(
    questions_per_s: float,
    params_billions: float,
    prompt_tokens: float,
    image_tokens: int,
    *,
    routes: Sequence[ModelRoute] | None = None,
    questions: int | None = None,
    gpus: int = GPUS,
    extra_s: float = 0.0,
) -> Projection:
    """Wall time of ``questions`` questions (default: every question of the paper's ten datasets) for each route
    (default: the paper's ten MLLMs), data parallel over ``gpus`` GPUs, from one measured rate per GPU.

    Args:
        questions_per_s: the measured rate on one GPU.
        params_billions, prompt_tokens, image_tokens: the measured model and its prompts.
        routes: the models to project (each needs an entry in ``SIZES``).
        questions: questions per model.
        gpus: GPUs of the node, one model copy each.
        extra_s: a fixed cost per model on every GPU (a compile).
    """
    routes = paper_routes() if routes is None else list(routes)
    total = sum(spec.expected_size for spec in paper_datasets()) if questions is None else questions
    rates = {
        route.name: scaled_rate(questions_per_s, params_billions, prompt_tokens, image_tokens, route.checkpoint)
        for route in routes
    }
    hours = {name: (total / gpus / rate + extra_s) / 3600 for name, rate in rates.items()}
    return Projection(total, gpus, hours, rates)


def project_measured(
    mode: str, *, routes: Sequence[ModelRoute] | None = None, questions: int | None = None, gpus: int = GPUS
) -> Projection:
    """:func:`project` from :data:`MEASURED`'s figure for ``mode``."""
    figure = MEASURED[mode]
    return project(
        figure.questions_per_s,
        figure.params_billions,
        figure.prompt_tokens,
        figure.image_tokens,
        routes=routes,
        questions=questions,
        gpus=gpus,
    )
