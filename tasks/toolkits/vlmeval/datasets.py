"""clsbench's datasets as one VLMEvalKit ``ImageMCQDataset`` (needs ``vlmeval``), and their registration.

:class:`ClsbenchMCQDataset` serves every clsbench VLMEvalKit name (``supported_datasets`` is its
``DATASET_URL``, one entry per name, as VLMEvalKit's multi-name datasets do). It asks the paper's prompt for
every model (``force_use_dataset_prompt``), reads the TSV itself (:func:`~.export.prepare_images`: never
VLMEvalKit's lossy localization, never a stale decoded image), and scores with
:func:`clsbench.tasks.protocol.parsing.parse_answer`, never VLMEvalKit's ``can_infer`` (a failed parse there
returns ``Z``), writing the usual ``<model>_<data>_clsbench_result`` and ``_acc.csv`` files.

VLMEvalKit has no plugin hook, so :func:`register_datasets` mutates its module-level lists in place; it must
happen in every process that builds datasets (under ``torchrun``, every rank runs ``clsbench vlmeval``,
which registers first). The command line registers the model wrappers beside it.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import ClassVar

from vlmeval.dataset.image_mcq import ImageMCQDataset
from vlmeval.dataset.utils.multiple_choice import report_acc
from vlmeval.smp import LMUDataRoot, dump, get_intermediate_file_path, load, read_ok, toliststr

from clsbench.tasks.data.samples import open_image
from clsbench.tasks.toolkits.vlmeval.export import image_file_stem, prepare_images
from clsbench.tasks.toolkits.vlmeval.names import RESULT_SUFFIX, VLMEVAL_DATASETS, export_command
from clsbench.tasks.toolkits.vlmeval.rows import prompt_message, score_rows


class ClsbenchMCQDataset(ImageMCQDataset):
    """A clsbench classification dataset (up to 26 options) read from ``$LMUData/<name>.tsv``."""

    TYPE = "MCQ"
    DATASET_URL: ClassVar[dict] = dict.fromkeys(VLMEVAL_DATASETS, "")  # "": read the local TSV, download nothing
    DATASET_MD5: ClassVar[dict] = {}
    force_use_dataset_prompt = True  # the paper's prompt for every model, as in lmms-eval

    def load_data(self, dataset):
        path = Path(LMUDataRoot()) / f"{dataset}.tsv"
        if not path.is_file():
            raise FileNotFoundError(
                f"{dataset}: no {path}. Write it with `{export_command(dataset, path.parent)}` "
                "(or run `clsbench vlmeval`, which exports missing TSVs)"
            )
        # Never VLMEvalKit's prepare_tsv: over 1 GiB it swaps our images for JPEG re-encodes.
        return load(str(prepare_images(path, Path(self.img_root))))

    def dump_image(self, line):
        if "image" not in line or not isinstance(line["image"], str):
            return super().dump_image(line)
        where = f"{self.dataset_name} row with index {line['index']!r}"
        stem = image_file_stem(line["index"], where, self.img_root)
        target = Path(self.img_root) / f"{stem}.png"
        if not read_ok(str(target)):
            dataset = str(line.get("dataset", self.dataset_name))
            image = open_image(
                {"bytes": base64.b64decode(line["image"])},
                dataset=dataset,
                sample_key=str(line.get("sample_key", line["index"])),
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            image.save(target, format="PNG")  # lossless, so the pixels are the ones lmms-eval decodes
        return [str(target)]

    def build_prompt(self, line):
        if isinstance(line, int):
            line = self.data.iloc[line]
        if not self.meta_only and isinstance(line.get("image"), str) and line["image"]:
            paths = self.dump_image(line)
        else:  # an image_path row: the original file, beside the TSV or where the path says
            paths = [p if os.path.isabs(p) else str(Path(self.img_root) / p) for p in toliststr(line["image_path"])]
        return prompt_message(line, paths)

    def evaluate(self, eval_file, **judge_kwargs):
        data = load(eval_file).sort_values(by="index")
        meta = {str(row["index"]): row for _, row in self.data.iterrows()}
        missing = [index for index in data["index"] if str(index) not in meta]
        if missing:
            raise ValueError(f"{self.dataset_name}: predictions for indices not in the dataset: {missing[:5]}")
        rows = []
        for _, prediction in data.iterrows():
            row = dict(meta[str(prediction["index"])])
            row["prediction"] = prediction.get("prediction")
            rows.append(row)
        scores = score_rows(rows)
        for column in ("parsed", "hit", "unparseable"):
            data[column] = [score[column] for score in scores]
        dump(data, get_intermediate_file_path(eval_file, RESULT_SUFFIX))
        accuracy = report_acc(data.copy())
        accuracy["unparseable_rate"] = [
            float(data[data["split"] == split]["unparseable"].mean())
            if "split" in data
            else float(data["unparseable"].mean())
            for split in accuracy["split"]
        ]
        dump(accuracy, get_intermediate_file_path(eval_file, "_acc", "csv"))
        return accuracy


def register_datasets() -> list[str]:
    """Make our datasets known to VLMEvalKit, in this process; idempotent. Returns their names.

    ``setattr`` on ``vlmeval.dataset`` makes the class reachable by name (``--config`` JSON's ``"class"``).
    """
    import vlmeval.dataset as vlm_dataset

    if ClsbenchMCQDataset not in vlm_dataset.DATASET_CLASSES:
        vlm_dataset.DATASET_CLASSES.insert(0, ClsbenchMCQDataset)
    names = ClsbenchMCQDataset.supported_datasets()
    vlm_dataset.SUPPORTED_DATASETS.extend(name for name in names if name not in vlm_dataset.SUPPORTED_DATASETS)
    setattr(vlm_dataset, ClsbenchMCQDataset.__name__, ClsbenchMCQDataset)
    return list(names)
