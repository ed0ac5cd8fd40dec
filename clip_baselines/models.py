"""Which CLIP model to score: the paper's six by short name, or any open_clip (model, pretrained) pair.

open_clip names a model by an architecture (``ViT-L-14-336-quickgelu``, ``hf-hub:org/repo``,
``local-dir:/path``) plus, for built-in architectures, a pretrained tag or checkpoint file. This
module checks such a pair *before* any download so a typo fails in a second with the names to use,
and loads it with the evaluation transform and tokenizer open_clip ships for it.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clsbench.tasks.data.loading import is_network_error
from clsbench.tasks.runtime.errors import ClsbenchError


class ModelError(ClsbenchError, ValueError):
    """An unknown or unloadable model; the message says how to find valid names."""


@dataclass(frozen=True)
class PaperModel:
    """One CLIP-style model of the paper's Table 2, with its exact open_clip identifiers."""

    key: str  # short name for ``--model``
    title: str  # as the paper names it
    model_name: str  # open_clip architecture
    pretrained: str  # open_clip pretrained tag
    towers: str  # MLLMs of the paper whose vision tower it is, where known
    imagenet_zeroshot: float  # open_clip's published ImageNet-1k zero-shot top-1 (%), for orientation
    table2_row: str = ""  # its row in the paper's Table 2 (clsbench report --reference paper)


# The MLLMs' vision towers fix the variant: LLaVA and Phi-3-Vision use OpenAI's 336 px ViT-L/14,
# Qwen2-VL starts from DFN's 378 px ViT-H/14, LLaVA-OneVision and MiniCPM-V use SigLIP SO400M/14 at
# 384 px. OpenAI and DFN weights were trained with QuickGELU: their ``-quickgelu`` names load them right.
PAPER_MODELS: dict[str, PaperModel] = {
    model.key: model
    for model in (
        PaperModel(
            "openai-vit-l-14",
            "OpenAI CLIP ViT-L/14",
            "ViT-L-14-336-quickgelu",
            "openai",
            "LLaVA-1.5, LLaVA-NeXT, Phi-3-Vision",
            76.6,
            "OpenAI CLIP",
        ),
        PaperModel(
            "eva02-clip-vit-l-14", "EVA-02-CLIP ViT-L/14", "EVA02-L-14", "merged2b_s4b_b131k", "", 79.8, "EVA-CLIP-02"
        ),
        PaperModel("dfn-vit-h-14", "DFN ViT-H/14", "ViT-H-14-378-quickgelu", "dfn5b", "Qwen2-VL", 84.4, "DFN-CLIP"),
        PaperModel(
            "openclip-convnext-xxlarge",
            "OpenCLIP ConvNeXt-XXLarge",
            "convnext_xxlarge",
            "laion2b_s34b_b82k_augreg_soup",
            "",
            79.5,
            "OpenCLIP ConvNeXt-XXL",
        ),
        PaperModel(
            "openclip-vit-bigg-14",
            "OpenCLIP ViT-bigG/14",
            "ViT-bigG-14",
            "laion2b_s39b_b160k",
            "Qwen-VL",
            80.1,
            "OpenCLIP ViT-bigG",
        ),
        PaperModel(
            "siglip-so400m",
            "SigLIP SO400M",
            "ViT-SO400M-14-SigLIP-384",
            "webli",
            "LLaVA-OneVision, MiniCPM-V 2.5/2.6",
            83.1,
            "SigLIP",
        ),
    )
}

FIND_NAMES_HINT = (
    "list the paper's models with `clsbench clip --list-models`, every open_clip pair with "
    '`python -c "import open_clip; print(open_clip.list_pretrained())"`, or pass hf-hub:ORG/REPO or local-dir:PATH'
)


@dataclass(frozen=True)
class ModelRef:
    """A checked (model, pretrained) pair; ``pretrained`` is None for hub/local folders and random weights."""

    model_name: str
    pretrained: str | None
    title: str = ""

    @property
    def schema(self) -> str | None:
        for schema in ("hf-hub", "local-dir"):
            if self.model_name.startswith(schema + ":"):
                return schema
        return None

    @property
    def pretrained_label(self) -> str:
        """What the results call the weights: the tag, a checkpoint's file name, or where they come from."""
        if self.pretrained:
            return Path(self.pretrained).name if _is_path(self.pretrained) else self.pretrained
        return {"hf-hub": "hub", "local-dir": "local"}.get(self.schema or "", "random")

    @property
    def run_label(self) -> str:
        """``<model>__<pretrained>`` made filesystem-safe (a short hash keeps distinct paths apart)."""
        model = self.model_name
        if self.schema == "local-dir":
            model = (
                "local-dir_" + Path(model.split(":", 1)[1]).name + "-" + _short_hash(_abspath(model.split(":", 1)[1]))
            )
        pretrained = self.pretrained_label
        if self.pretrained and _is_path(self.pretrained):
            pretrained += "-" + _short_hash(_abspath(self.pretrained))
        return f"{safe_name(model)}__{safe_name(pretrained)}"

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the weights for the text-embedding cache: names, plus each local file's size and content
        hash (:func:`clsbench.tasks.runtime.stores.file_sha256`), so weights changed in place never hit."""
        from clsbench.tasks.runtime.stores import file_sha256

        files = []
        if self.pretrained and _is_path(self.pretrained):
            files.append(self.pretrained)
        if self.schema == "local-dir":
            folder = Path(self.model_name.split(":", 1)[1])
            files += sorted(str(path) for path in folder.iterdir() if path.is_file())
        stats = [(_abspath(path), os.stat(path).st_size, file_sha256(path)) for path in files]
        return {"model": self.model_name, "pretrained": self.pretrained, "files": stats}


def safe_name(text: str) -> str:
    """Letters, digits, dot, dash and underscore only; everything else becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "_"


def _is_path(value: str) -> bool:
    """Checked refs hold checkpoint files as absolute paths; tags never contain a separator."""
    return os.sep in value


def _abspath(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _suggest(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=4, cutoff=0.6)
    return f" Did you mean {', '.join(close)}?" if close else ""


def resolve_model(model: str, pretrained: str | None = None) -> ModelRef:
    """Check a model name (a paper short name or an open_clip identifier) and its pretrained tag, offline."""
    import open_clip

    if model in PAPER_MODELS:
        spec = PAPER_MODELS[model]
        if pretrained not in (None, spec.pretrained):
            raise ModelError(
                f"{model} is {spec.model_name} with pretrained={spec.pretrained}; drop --pretrained {pretrained}"
            )
        return ModelRef(spec.model_name, spec.pretrained, spec.title)
    if model.startswith("hf-hub:"):
        if not model[len("hf-hub:") :].strip("/"):
            raise ModelError(f"empty repository in {model!r}; use hf-hub:ORG/REPO")
        if pretrained:
            raise ModelError(f"{model} brings its own weights; drop --pretrained {pretrained}")
        return ModelRef(model, None)
    if model.startswith("local-dir:"):
        folder = Path(model[len("local-dir:") :]).expanduser()
        if not (folder / "open_clip_config.json").is_file():
            raise ModelError(f"{model}: no open_clip_config.json in {folder}")
        if pretrained:
            raise ModelError(f"{model} brings its own weights; drop --pretrained {pretrained}")
        return ModelRef(f"local-dir:{folder.resolve()}", None)
    name = model.replace("/", "-")
    if name not in open_clip.list_models():
        raise ModelError(
            f"unknown model {model!r}: neither one of the paper's models ({', '.join(PAPER_MODELS)}) "
            f"nor an open_clip architecture.{_suggest(name, [*PAPER_MODELS, *open_clip.list_models()])} "
            f"To find names: {FIND_NAMES_HINT}."
        )
    tags = open_clip.list_pretrained_tags_by_model(name)
    if pretrained is None or pretrained in tags:  # no tag: random weights, as open_clip gives them
        return ModelRef(name, pretrained)
    if os.path.isfile(pretrained):
        return ModelRef(name, _abspath(pretrained))
    known = ", ".join(tags) if tags else "none (pass a checkpoint file, or no --pretrained for random weights)"
    raise ModelError(
        f"unknown pretrained tag {pretrained!r} for {name}, and no such checkpoint file; its tags: {known}."
        f"{_suggest(pretrained, tags)}"
    )


@dataclass
class LoadedModel:
    """A model in eval mode with the transform and tokenizer open_clip pairs with it."""

    ref: ModelRef
    model: Any
    preprocess: Any
    tokenizer: Any
    device: Any


def table2_row(model_name: str, pretrained: str | None) -> str | None:
    """The paper's Table 2 row of an open_clip (model, pretrained) pair, when it is one of the six."""
    for spec in PAPER_MODELS.values():
        if (spec.model_name, spec.pretrained) == (model_name, pretrained):
            return spec.table2_row
    return None


def weights_identity(ref: ModelRef) -> dict:
    """What the weights are, for result fingerprints: a release tag, a local file or folder's files, or random."""
    from clsbench.tasks.runtime.stores import weights_fingerprint

    if ref.schema == "local-dir":
        return weights_fingerprint(ref.model_name)
    if ref.schema == "hf-hub":
        return weights_fingerprint(ref.model_name.removeprefix("hf-hub:"))
    if ref.pretrained and _is_path(ref.pretrained):
        return weights_fingerprint(ref.pretrained)
    if ref.pretrained:
        return {"open_clip": ref.model_name, "pretrained": ref.pretrained}
    return {"open_clip": ref.model_name, "random_init": True}


def _hub_repo(ref: ModelRef) -> str | None:
    """The Hub repository the weights download from (``hf download`` takes it), or None (local or random)."""
    if ref.schema == "hf-hub":
        return ref.model_name.removeprefix("hf-hub:").strip("/")
    if not ref.pretrained or _is_path(ref.pretrained) or ref.schema is not None:
        return None
    from open_clip.pretrained import get_pretrained_cfg

    return (get_pretrained_cfg(ref.model_name, ref.pretrained).get("hf_hub") or "").strip("/") or None


def load_model(ref: ModelRef, device="cpu", cache_dir: str | None = None) -> LoadedModel:
    """Build the model (downloading weights on first use) and move it to ``device``.

    QuickGELU is switched on when the pretrained tag was trained with it but the architecture name
    lacks ``-quickgelu``: loading OpenAI or DFN weights into GELU blocks silently costs accuracy.
    """
    import open_clip
    import torch

    kwargs: dict[str, Any] = {}
    if ref.schema is None and ref.pretrained and not _is_path(ref.pretrained):
        from open_clip.pretrained import get_pretrained_cfg

        config = open_clip.get_model_config(ref.model_name) or {}
        if get_pretrained_cfg(ref.model_name, ref.pretrained).get("quick_gelu") and not config.get("quick_gelu"):
            kwargs["force_quick_gelu"] = True
    try:
        with warnings.catch_warnings():
            if ref.pretrained is None and ref.schema is None:
                warnings.simplefilter("ignore")  # random weights are what was asked for
            model, _, preprocess = open_clip.create_model_and_transforms(
                ref.model_name, pretrained=ref.pretrained, cache_dir=cache_dir, **kwargs
            )
        tokenizer = open_clip.get_tokenizer(ref.model_name, cache_dir=cache_dir)
    except Exception as error:  # open_clip raises the HTTP library's own types when the Hub is unreachable
        repo = _hub_repo(ref)
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" and isinstance(error, (OSError, ValueError))
        if repo and (is_network_error(error) or offline):  # no cached copy offline is the same missing download
            raise ModelError(
                f"could not download {ref.model_name} pretrained={ref.pretrained} from the Hugging Face Hub "
                f"({type(error).__name__}: {str(error)[:200]}). On a machine with access run\n  hf download {repo}\n"
                "then bring that HF cache here and set HF_HUB_OFFLINE=1 (or pass it as --model-cache-dir), or pass "
                "a checkpoint file as --pretrained"
            ) from error
        if not isinstance(error, (RuntimeError, OSError, ValueError)):
            raise
        raise ModelError(f"could not load {ref.model_name} pretrained={ref.pretrained}: {error}") from error
    model = model.to(torch.device(device)).eval()
    return LoadedModel(ref, model, preprocess, fast_clean(tokenizer), torch.device(device))


_PLAIN = re.compile(r"[ -%'-~]*")  # printable ASCII without "&": text that ftfy and html.unescape leave as it is


def fast_clean(tokenizer):
    """Skip ftfy where it provably changes nothing: open_clip's ``lower`` clean runs ``ftfy.fix_text`` and
    ``html.unescape`` twice on every prompt (over half the cold run's time), and for printable ASCII
    without ``&`` both are the identity, so the tokens are the same (a test checks every dataset's prompts).
    Tokenizers without that clean function are returned untouched."""
    inner = getattr(tokenizer, "clean_fn", None)
    if getattr(inner, "__name__", "") != "_clean_lower":
        return tokenizer

    def clean(text: str) -> str:
        if _PLAIN.fullmatch(text):
            return " ".join(text.split()).lower()
        return inner(text)

    clean.__name__ = "_clean_lower_fast"
    tokenizer.clean_fn = clean
    return tokenizer
