"""Open/closed-world answers mapped to classes, and the text-only LLM test, inside lmms-eval."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from clsbench.tasks.cls_mcq.task_folder import PACKAGE_TASK_FOLDER, task_folder_for
from clsbench.tasks.data.fixtures import write_fixture_dataset
from clsbench.tasks.data.loading import load_rows
from clsbench.tasks.data.samples import add_questions
from clsbench.tasks.protocol.catalog import FREE_FORM_KINDS, kind_datasets, task_name, variant_folder
from clsbench.tasks.protocol.registry import DATASETS
from clsbench.tasks.variants.open_world import CLOSED_PROMPT, OPEN_PROMPT, exact_class, nearest_classes

CLSBENCH = [sys.executable, "-m", "clsbench.tasks.cli"]
BRANDS = "Nike Puma Adidas Anta Erke Kappa Xtep Li-Ning New Balance 361 Degrees"


def scripted_model(reply_for):
    """An lmms-eval model built in the test: replies ``reply_for(doc, prompt, visuals)``."""
    from lmms_eval.api.model import lmms

    class Scripted(lmms):
        is_simple = True
        prompts: list[str] = []

        def generate_until(self, requests):
            replies = []
            for request in requests:
                prompt, _gen_kwargs, doc_to_visual, doc_id, task, split = request.args
                doc = self.task_dict[task][split][doc_id]
                self.prompts.append(prompt)
                replies.append(reply_for(doc, prompt, doc_to_visual(doc)))
            return replies

        def loglikelihood(self, requests):
            raise NotImplementedError

        def generate_until_multi_round(self, requests):
            raise NotImplementedError

    return Scripted()


def evaluate(model, tasks, root):
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    manager = TaskManager("ERROR", include_path=str(task_folder_for(root)))
    return simple_evaluate(model=model, tasks=tasks, task_manager=manager)["results"]


def test_kinds_and_closed_world_limit():
    closed = kind_datasets(FREE_FORM_KINDS["_closed"])  # every dataset whose class list fits a prompt
    assert [spec.key for spec in closed] == [
        key for key, spec in DATASETS.items() if spec.classnames and len(spec.classnames) <= 256
    ]
    assert {"caltech101", "cub200", "food101", "logo", "flowers102", "stanfordcars"} <= {spec.key for spec in closed}
    assert not {"imagenet", "imagenetv2", "objectnet", "gldv2"} & {spec.key for spec in closed}
    for suffix, kind in FREE_FORM_KINDS.items():
        for spec in kind_datasets(kind):
            assert (PACKAGE_TASK_FOLDER / variant_folder(suffix) / f"{task_name(spec.key, suffix)}.yaml").is_file()


@pytest.mark.parametrize(
    "reply,expected",
    [
        ("Red fox", 1),
        ("red fox.", 1),
        ("**A red fox**", 1),
        ("the Red Fox!", 1),
        ("fox", None),
        ("tench or red fox", None),
        ("It's a red fox.", 1),
        ("red foxes", 1),
        ("red-fox", 1),
        ("The image shows a kit fox.", 2),
    ],
)
def test_exact_match_uses_the_parsers_name_rules(reply, expected):
    assert exact_class(reply, ["tench", "red fox", "kit fox"]) == expected


def test_nearest_class_by_embedding(tiny_sentence_encoder):
    names = DATASETS["food101"].classnames
    assert nearest_classes(["apple pie", "waffles", "ramen"], names, str(tiny_sentence_encoder)) == [
        0,
        100,
        names.index("ramen"),
    ]


def test_open_and_closed_world_scores(fixture_root, tiny_sentence_encoder, monkeypatch):
    monkeypatch.setenv("CLSBENCH_TEXT_ENCODER", str(tiny_sentence_encoder))
    right = scripted_model(lambda doc, prompt, visuals: f"**{doc['class_name'].upper()}.**")
    results = evaluate(right, ["cls_logo_open", "cls_logo_closed"], fixture_root)
    for task in ("cls_logo_open", "cls_logo_closed"):
        assert results[task]["strict_accuracy,none"] == 1.0
        assert results[task]["mapped_accuracy,none"] == 1.0
        assert results[task]["contains_accuracy,none"] == 1.0
        assert results[task]["out_of_list_rate,none"] == 0.0
    names = ", ".join(DATASETS["logo"].classnames)
    closed = [p for p in right.prompts if "select the category name from the following list." in p]
    open_ = [p for p in right.prompts if p == OPEN_PROMPT]
    assert len(closed) == len(open_) == 6
    assert all(prompt == CLOSED_PROMPT.format(names=names) for prompt in closed)

    # A sentence around the name: the parser's lead-ins read it, P2's contains rule too.
    sentence = scripted_model(lambda doc, prompt, visuals: f"I think this is a {doc['class_name']}.")
    results = evaluate(sentence, ["cls_food101_open"], fixture_root)["cls_food101_open"]
    assert results["strict_accuracy,none"] == 1.0 and results["contains_accuracy,none"] == 1.0
    # Rambling: no class named exactly, but the right name is contained (P2's success rule).
    rambling = scripted_model(lambda doc, prompt, visuals: f"Probably {doc['class_name']} or something similar")
    results = evaluate(rambling, ["cls_food101_open", "cls_logo_closed_p2"], fixture_root)
    assert results["cls_food101_open"]["strict_accuracy,none"] == 0.0
    assert results["cls_food101_open"]["out_of_list_rate,none"] == 1.0
    assert results["cls_food101_open"]["contains_accuracy,none"] == 1.0
    assert 0.0 <= results["cls_food101_open"]["mapped_accuracy,none"] <= 1.0
    assert results["cls_logo_closed_p2"]["contains_accuracy,none"] == 1.0
    assert sum(p.startswith("What type of object is in this photo? Choose one from ") for p in rambling.prompts) == 6


def test_describe_then_text_only(fixture_root, tmp_path):
    root = tmp_path / "root"
    write_fixture_dataset(root, "logo", 6)
    describe = subprocess.run(
        [
            *CLSBENCH,
            "lmms",
            "--data-dir",
            str(root),
            "--model",
            "dummy",
            "--model_args",
            f"response={BRANDS}",
            "--tasks",
            "cls_logo_describe",
            "--log_samples",
            "--output_path",
            str(tmp_path / "describe"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert describe.returncode == 0, describe.stderr[-3000:]
    collect = subprocess.run(
        [*CLSBENCH, "descriptions", str(tmp_path / "describe"), "--data-dir", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collect.returncode == 0, collect.stderr
    content = json.loads((root / "descriptions" / "logo.json").read_text())
    assert content["format"] == "clsbench-descriptions-v1" and content["produced_by"][0]["model"] == "dummy"
    stored = content["descriptions"]
    assert len(stored) == 6
    docs = add_questions(load_rows("logo", root), "logo")
    for doc in docs:  # the reply names every brand; each sample's own class is redacted, the others stay
        assert stored[doc["sample_key"]] == BRANDS.replace(doc["class_name"], "[the class]")
        assert stored[doc["sample_key"]].count("[the class]") == 1

    seen_visuals = []

    def oracle(doc, prompt, visuals):
        seen_visuals.append(len(visuals))
        assert prompt.startswith(
            f"Here is a description of someone object. {stored[doc['sample_key']]} Can you tell me "
            "what object it describes? Answer with the option's letter"
        )
        return doc["answer"]

    results = evaluate(scripted_model(oracle), ["cls_logo_textonly"], root)["cls_logo_textonly"]
    assert results["accuracy,none"] == 1.0 and seen_visuals == [0] * 6


def test_text_only_without_descriptions_names_the_command(fixture_root):
    from clsbench.tasks.cls_mcq.utils import questions_for
    from clsbench.tasks.data.loading import DataError, load_rows

    with pytest.raises(DataError, match="clsbench descriptions"):
        questions_for(load_rows("cub200", fixture_root), "cub200", "_textonly", fixture_root / "elsewhere")
