"""Fidelity to the real datasets and to the papers, checked against evidence from outside the project.

The Hub's label names at the pinned revisions (data/hub_labels/, from HUB_LABELS.md, the datasets'
own class lists and timm's ImageNet lemmas), the paper's printed prompts and class names, and the
exact files each Hub split is read from.
"""

from __future__ import annotations

import fnmatch
import json
import re
import runpy

import datasets
import pytest

from clsbench.tasks.cls_mcq.task_folder import PACKAGE_TASK_FOLDER
from clsbench.tasks.data.fixtures import synthetic_image
from clsbench.tasks.data.loading import DataError, check_label_names, hub_load_kwargs, load_rows, write_prepared
from clsbench.tasks.data.samples import add_questions
from clsbench.tasks.protocol.registry import DATASETS, HubSource
from clsbench.tasks.variants.descriptions import DESCRIBE_PROMPT, TEXTONLY_QUESTION
from clsbench.tasks.variants.open_world import CLOSED_PROMPT, OPEN_PROMPT, P2_CLOSED_PROMPT, contains_class

generated_files = runpy.run_path(str(PACKAGE_TASK_FOLDER / "_generate_configs.py"))["generated_files"]  # a script

HUB = {key: spec for key, spec in DATASETS.items() if isinstance(spec.source, HubSource)}
RECORDED = {key: spec.hub_labels for key, spec in HUB.items() if spec.hub_labels and spec.hub_labels["names"]}


def _comparable(name: str) -> str:
    """HUB_LABELS.md's normalisation: lower case, `_`/`-` to space, a leading `NNN.` stripped."""
    name = re.sub(r"^\d{3}\.", "", name)
    return " ".join(name.replace("_", " ").replace("-", " ").split()).casefold()


def label_mismatches(key: str, ours) -> list[int]:
    """Indices where our display name is not the Hub's label name under the documented rules."""
    evidence = DATASETS[key].hub_labels
    synonyms = {int(index): entry for index, entry in evidence["synonyms"].items()}
    bad = []
    for index, (hub, mine) in enumerate(zip(evidence["names"], ours, strict=True)):
        if index in synonyms:
            same = (synonyms[index]["hub"], synonyms[index]["ours"]) == (hub, mine)
        elif key == "imagenet":  # the paper's names are the first lemma of the Hub's "tench, Tinca tinca"
            same = mine == hub.split(",")[0].strip().lower()
        else:
            same = _comparable(hub) == _comparable(mine)
        if not same:
            bad.append(index)
    return bad


def test_every_hub_dataset_has_label_evidence_at_its_pinned_revision():
    for key, spec in HUB.items():
        evidence = spec.hub_labels
        assert evidence is not None, f"{key}: no data/hub_labels/{key}.json"
        assert (evidence["repo_id"], evidence["revision"]) == (spec.source.repo_id, spec.source.revision)
        assert evidence["evidence"] and evidence["display_rule"]
        if evidence["names"] is not None:
            assert len(evidence["names"]) == len(spec.classnames)


@pytest.mark.parametrize("key", sorted(RECORDED))
def test_display_names_match_the_hub_labels_index_for_index(key):
    assert label_mismatches(key, DATASETS[key].classnames) == []


def test_the_food101_swap_of_clsbench_0_1_is_caught_by_the_evidence():
    old = list(DATASETS["food101"].classnames)
    old[16], old[17] = old[17], old[16]  # OpenAI's sorted() order, as clsbench 0.1 shipped it
    assert label_mismatches("food101", old) == [16, 17]
    assert DATASETS["food101"].classnames[16:18] == ("cheesecake", "cheese plate")


def test_imagenet_paper_names_are_first_lemmas_and_the_paper_lists_use_them():
    names = DATASETS["imagenet"].classnames
    assert (names[7], names[23], names[934]) == ("cock", "vulture", "hotdog")
    with open(_paper_file("food_subsets.json"), encoding="utf-8") as handle:
        food = json.load(handle)
    assert [n for n in food["imagenet"] if names.count(n) != 1] == [], "Appendix D's ImageNet names are ours, once each"
    v2 = [name.casefold() for name in DATASETS["imagenetv2"].classnames]
    assert [n for n in food["imagenetv2"] if v2.count(n.casefold()) != 1] == []  # printed lower case
    assert {"sorrel", "cairn", "borzoi"} <= set(names)  # Table 8's worst classes
    assert DATASETS["imagenet"].names("openai")[7] == "rooster"
    assert DATASETS["imagenetv2"].classnames[389] == "snoek fish"


def _paper_file(name: str) -> str:
    from importlib import resources

    return str(resources.files("clsbench.tasks").joinpath("data", "paper", name))


def _split(names: list[str], labels: list[int]) -> datasets.Dataset:
    """A split with the Hub's schema (no source_id column, which only prepared copies have)."""
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    images = [{"bytes": synthetic_image("food101", i, label), "path": None} for i, label in enumerate(labels)]
    return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)


def test_a_swapped_label_order_fails_at_load_naming_index_and_both_names():
    hub = list(DATASETS["food101"].hub_labels["names"])
    with_ids = _split(hub, [16, 17]).add_column("source_id", ["a", "b"])  # the Hub's names kept in a local copy
    with pytest.warns(UserWarning, match="has 2 rows, the paper's split 25,250"):
        docs = add_questions(with_ids, "food101")
    assert docs["class_name"] == ["cheesecake", "cheese plate"]
    swapped = hub.copy()
    swapped[16], swapped[17] = swapped[17], swapped[16]
    with pytest.raises(
        DataError,
        match=r"label 16 of the Hub split is named 'cheese_plate', but clsbench expects "
        r"'cheesecake'",
    ):
        add_questions(_split(swapped, [16, 17]), "food101")


def test_a_hub_split_of_the_wrong_size_is_an_error():
    with pytest.raises(DataError, match="food101: the Hub split has 2 rows, the paper's split 25,250"):
        add_questions(_split(list(DATASETS["food101"].hub_labels["names"]), [0, 1]), "food101")


def test_a_synthetic_swap_in_a_prepared_copy_fails_at_load(tmp_path):
    names = list(DATASETS["flowers102"].classnames)
    names[0], names[1] = names[1], names[0]
    records = [(f"{i}.png", synthetic_image("flowers102", i, i), i) for i in range(3)]
    write_prepared(tmp_path / "flowers102", "flowers102", records, names, {})
    with pytest.raises(DataError, match="label 0 of .*flowers102.* is named 'hard-leaved pocket orchid'"):
        load_rows("flowers102", tmp_path)


def test_the_hub_spellings_and_synonyms_are_accepted():
    check_label_names("flowers102", DATASETS["flowers102"].hub_labels["names"], "the Hub split")
    check_label_names("cub200", DATASETS["cub200"].hub_labels["names"], "the Hub split")
    check_label_names("imagenet", DATASETS["imagenet"].hub_labels["names"], "the Hub split")
    with pytest.raises(DataError, match="has 5 label names"):
        check_label_names("cub200", ["a"] * 5, "the Hub split")


OTHER_SPLITS = (
    "train",
    "validation",
    "test",
    "contrast",
    "gaussian_noise",
    "impulse_noise",
    "jpeg_compression",
    "motion_blur",
    "pixelate",
    "spatter",
    "defocus_blur",
)


@pytest.mark.parametrize("key", sorted(HUB))
def test_load_arguments_cover_only_the_split(key):
    source = DATASETS[key].source
    kwargs = hub_load_kwargs(source)
    assert kwargs == {"path": source.builder, "data_files": {source.split: source.data_url}}
    assert source.data_url.startswith(f"hf://datasets/{source.repo_id}@{source.revision}/")
    pattern = source.data_files
    ext = "tar" if source.builder == "webdataset" else "parquet"
    for split in OTHER_SPLITS:
        files = [
            f"data/{split}-00000-of-00004.parquet",
            f"{split}/000000.tar",
            f"data/{split}_x-00000-of-00001.parquet",
        ]
        hits = [name for name in files if fnmatch.fnmatch(name, pattern)]
        if split == source.split:
            assert any(name.endswith(ext) for name in hits), (key, split, hits)
        else:
            assert hits == [], f"{key}: {pattern} would also download {hits}"
    assert not fnmatch.fnmatch("nshards.txt", pattern) and not fnmatch.fnmatch("README.md", pattern)
    assert f"--include '{pattern}'" in source.download_command()
    assert DATASETS["imagenetv2"].source.builder == "webdataset"


def test_lmms_eval_yamls_read_only_the_split_files():
    files = generated_files()
    for key, spec in HUB.items():
        text = files[f"_{key}_source_yaml"]  # written once per dataset, included by each of its tasks
        assert f"dataset_path: {spec.source.builder}\n" in text and spec.source.data_url in text
        assert f"_{key}_source_yaml" in files[f"4opt/cls_{key}_mcq_4opt.yaml"]


def test_paper_prompts_verbatim():
    # P1 Appendix B.1 (open and closed world), C.2 (justification), section 5.1 (text-only question).
    assert OPEN_PROMPT == "Please identify the main object in the given image and output the category name."
    assert CLOSED_PROMPT.format(names="a, b") == (
        "Please identify the main object in the given image and select the category name from the following "
        "list.\n[a, b]"
    )
    assert P2_CLOSED_PROMPT.format(names="a, b") == "What type of object is in this photo? Choose one from a, b"
    assert TEXTONLY_QUESTION.format(description="D.") == (
        "Here is a description of someone object. D. Can you tell me what object it describes?"
    )
    assert DESCRIBE_PROMPT.format(class_name="tench") == (
        "You will be given a tench image. Your task is to identify the tench in it and summarize the reason for "
        "this judgment. You should focus on several aspects, including:\n"
        "- Appearance: Describe the object's shape, color, texture, and any distinct features.\n"
        "- Context or environment: Where is this object commonly found or used? Describe its typical environment "
        "or surroundings.\n"
        "- Function or behavior: Explain how this object is typically used or behaves (if it's an animal or "
        "device, for example).\n"
        "- Any other relevant information: Mention any notable facts or characteristics that help define this "
        "object class.\n"
        "NOTE:\n"
        "- Keep the reason concise, with one or two sentences for each aspect.\n"
        "- Do not use the category or synonym names of tench in your answer, instead using 'it'.\n"
        "- Just output the reason."
    )


def test_hooks_build_the_paper_prompts():
    from clsbench.tasks.cls_mcq import utils

    doc = {
        "dataset": "logo",
        "class_name": "Nike",
        "question": "Which logo is this?",
        "options": ["Nike", "Puma"],
        "description": "A swoosh.",
    }
    names = ", ".join(DATASETS["logo"].classnames)
    assert utils.cls_open_doc_to_text(doc) == OPEN_PROMPT
    assert utils.cls_closed_doc_to_text(doc) == CLOSED_PROMPT.format(names=names)
    assert utils.cls_closed_p2_doc_to_text(doc) == P2_CLOSED_PROMPT.format(names=names)
    assert utils.cls_describe_doc_to_text(doc) == DESCRIBE_PROMPT.format(class_name="Nike")
    assert utils.cls_textonly_doc_to_text(doc) == (
        "Here is a description of someone object. A swoosh. Can you tell me what object it describes? Answer with "
        "the option's letter from the given choices directly.\nA. Nike\nB. Puma"
    )


@pytest.mark.parametrize(
    "reply,name,expected",
    [
        ("It is a red fox.", "red fox", True),
        ("RED FOX", "red fox", True),
        ("a red-fox", "red fox", True),
        ("a fox", "red fox", False),
        ("redfox", "red fox", False),
        ("", "red fox", False),
        ("Pink primrose, I think", "pink primrose", True),
        ("cheesecakes", "cheesecake", False),
    ],
)
def test_contains_accuracy_is_p2s_rule(reply, name, expected):
    assert contains_class(reply, name) is expected


def test_openai_names_are_one_task_away():
    files = generated_files()
    assert "class_names: openai" in files["openai/cls_imagenet_mcq_openai.yaml"]
    assert "openai/cls_imagenetv2_mcq_openai.yaml" not in files  # ImageNetV2 already shows OpenAI's names
    split = _split_imagenet()
    paper = add_questions(split, "imagenet")
    openai = add_questions(split, "imagenet", name_set="openai")
    assert paper["class_name"] == ["cock"] and openai["class_name"] == ["rooster"]
    assert paper["answer"] == openai["answer"] and paper["question"] == openai["question"]


def _split_imagenet() -> datasets.Dataset:
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.Value("int64"), "source_id": datasets.Value("string")}
    )
    image = {"bytes": synthetic_image("imagenet", 0, 7), "path": None}
    return datasets.Dataset.from_dict({"image": [image], "label": [7], "source_id": ["x"]}, features=features)


def test_cliphard_variant_asks_the_5way_question():
    files = generated_files()
    assert "n_options: 5" in files["cliphard/cls_cub200_mcq_cliphard.yaml"]
    from clsbench.clip_baselines.hard_negatives import DEFAULT_MODEL, DEFAULT_PRETRAINED, DEFAULT_TEMPLATES

    assert (DEFAULT_MODEL, DEFAULT_PRETRAINED, DEFAULT_TEMPLATES) == ("ViT-L-14", "laion2b_s32b_b82k", "single")


# --- Hub label records: what the Hub holds, verbatim, with evidence per record (issue 29) ----------------

# TensorFlow Datasets' oxford_flowers102 label names, the list the dpdl-benchmark/oxford_flowers102 card follows
# (read in verbatim copies of the TFDS list in public repositories; the card itself shows 0, 1, 15, 59, 84 the same).
TFDS_FLOWERS102 = (
    "pink primrose|hard-leaved pocket orchid|canterbury bells|sweet pea|english marigold|tiger lily|moon "
    "orchid|bird of paradise|monkshood|globe thistle|snapdragon|colt's foot|king protea|spear thistle|yellow "
    "iris|globe-flower|purple coneflower|peruvian lily|balloon flower|giant white arum lily|fire lily|pincushion "
    "flower|fritillary|red ginger|grape hyacinth|corn poppy|prince of wales feathers|stemless "
    "gentian|artichoke|sweet william|carnation|garden phlox|love in the mist|mexican aster|alpine sea "
    "holly|ruby-lipped cattleya|cape flower|great masterwort|siam tulip|lenten rose|barbeton daisy|daffodil|sword "
    "lily|poinsettia|bolero deep blue|wallflower|marigold|buttercup|oxeye daisy|common dandelion|petunia|wild "
    "pansy|primula|sunflower|pelargonium|bishop of llandaff|gaura|geranium|orange dahlia|pink-yellow "
    "dahlia?|cautleya spicata|japanese anemone|black-eyed susan|silverbush|californian poppy|osteospermum|spring "
    "crocus|bearded iris|windflower|tree poppy|gazania|azalea|water lily|rose|thorn apple|morning glory|passion "
    "flower|lotus|toad lily|anthurium|frangipani|clematis|hibiscus|columbine|desert-rose|tree "
    "mallow|magnolia|cyclamen|watercress|canna lily|hippeastrum|bee balm|ball "
    "moss|foxglove|bougainvillea|camellia|mallow|mexican petunia|bromelia|blanket flower|trumpet creeper|blackberry"
    " lily"
).split("|")


def _hub_imagenet_names() -> list[str]:
    """ILSVRC/imagenet-1k's ClassLabel names as its classes.py builds them: the LOC_synset_mapping lemmas in
    sorted-WNID order (timm ships that text), with n03126707 (517) renamed "crane2" so no name repeats."""
    timm = pytest.importorskip("timm")
    from pathlib import Path

    info = Path(timm.__file__).parent / "data" / "_info"
    wnids = (info / "imagenet_synsets.txt").read_text().split()
    lemmas = dict(line.split("\t", 1) for line in (info / "imagenet_synset_to_lemma.txt").read_text().splitlines())
    names = [lemmas[wnid].strip() for wnid in wnids]
    names[wnids.index("n03126707")] = "crane2"
    return names


@pytest.mark.parametrize("key", sorted(RECORDED))
def test_every_hub_label_record_is_a_valid_classlabel(key):
    names = RECORDED[key]["names"]
    feature = datasets.ClassLabel(names=names)  # raises "Some label names are duplicated" on a repeat
    assert feature.num_classes == len(set(names)) == len(DATASETS[key].classnames)


def test_the_load_time_check_accepts_the_evidenced_hub_names():
    imagenet = _hub_imagenet_names()
    assert imagenet[517] == "crane2" and imagenet[134] == "crane"
    check_label_names("imagenet", imagenet, "the Hub split")  # refused "crane2" at 517 before issue 29
    assert DATASETS["imagenet"].hub_labels["names"] == imagenet
    assert TFDS_FLOWERS102[92] == "ball moss" and len(TFDS_FLOWERS102) == 102
    check_label_names("flowers102", TFDS_FLOWERS102, "the Hub split")
    assert DATASETS["flowers102"].hub_labels["names"] == TFDS_FLOWERS102
    datasets.ClassLabel(names=imagenet), datasets.ClassLabel(names=TFDS_FLOWERS102)


def test_display_names_stay_separate_from_the_hub_records():
    assert DATASETS["flowers102"].classnames[92] == "air plant"  # OpenAI CLIP's display name, shown to the model
    assert DATASETS["imagenet"].classnames[517] == "crane"  # the paper's first lemma
    assert DATASETS["imagenet"].hub_labels["synonyms"]["517"]["hub"] == "crane2"


@pytest.mark.parametrize("key", sorted(HUB))
def test_every_record_says_which_indices_were_seen_where(key):
    from clsbench.tasks.data.loading import evidenced_indices, parse_indices

    record = HUB[key].hub_labels
    assert record["format"] == "clsbench-hub-labels-v2"
    for entry in record["evidence"]:
        assert entry["kind"] in ("hub", "upstream") and entry["source"] and entry["revision"] and entry["indices"]
    seen = evidenced_indices(record)
    if record["names"] is not None:
        assert seen <= set(range(len(record["names"])))
        hub_seen = set().union(*(parse_indices(e["indices"]) for e in record["evidence"] if e["kind"] == "hub"))
        assert hub_seen == set(range(len(record["names"]))) or record["unverified_note"], key


def test_stanford_cars_marks_what_was_never_seen_on_the_card():
    from clsbench.tasks.data.loading import evidenced_indices

    record = DATASETS["stanfordcars"].hub_labels
    assert evidenced_indices(record) == set(range(44)) | {195}
    assert 173 not in evidenced_indices(record)
    names = list(record["names"])
    names[173] = "Ram CV Cargo Van Minivan 2012"  # a Hub spelling the record could not rule out
    with pytest.raises(DataError, match="never checked against the Hub at index 173"):
        check_label_names("stanfordcars", names, "the Hub split")
    names = list(record["names"])
    names[0], names[1] = names[1], names[0]
    with pytest.raises(DataError, match="label 0") as error:
        check_label_names("stanfordcars", names, "the Hub split")
    assert "never checked" not in str(error.value)


def test_imagenetv2_columns_are_discovered_not_guessed():
    from clsbench.tasks.data.loading import HubLayoutError, to_standard_columns

    source = DATASETS["imagenetv2"].source
    assert (source.image_column, source.label_column) == (None, None)
    image = {"bytes": synthetic_image("imagenetv2", 0, 3), "path": None}
    for key in ("webp", "jpg", "png"):
        features = datasets.Features(
            {"__key__": datasets.Value("string"), key: datasets.Image(), "cls": datasets.Value("int64")}
        )
        rows = datasets.Dataset.from_dict({"__key__": ["a"], key: [image], "cls": [3]}, features=features)
        assert to_standard_columns(rows, source).column_names == ["__key__", "image", "label"]
    two = datasets.Features({"webp": datasets.Image(), "jpg": datasets.Image(), "cls": datasets.Value("int64")})
    rows = datasets.Dataset.from_dict({"webp": [image], "jpg": [image], "cls": [3]}, features=two)
    with pytest.raises(HubLayoutError, match=r"cannot tell the image column .*found webp \(Image\), jpg \(Image\)"):
        to_standard_columns(rows, source)
    none = datasets.Features({"webp": datasets.Image(), "txt": datasets.Value("string")})
    rows = datasets.Dataset.from_dict({"webp": [image], "txt": ["3"]}, features=none)
    with pytest.raises(HubLayoutError, match=r"cannot tell the label column .*found webp \(Image\), txt \(Value\)"):
        to_standard_columns(rows, source)


# --- The paper's printed prompt layout (issue 29) ----------------------------------------------------------


def _printed_block(heading: str) -> list[str]:
    """The lines of one prompt as printed in the paper, from tasks/data/paper/prompts.md (a verbatim transcription).

    The transcription writes the paper's line breaks both as real ones and as ``\\n``; the space that follows
    each printed break is typesetting (the paper's column layout), and ``<image>`` is where the image goes.
    """
    text = open(_paper_file("prompts.md"), encoding="utf-8").read()
    block = text.split(f"## {heading}", 1)[1].split("```", 2)[1].strip("\n")
    lines = [line.lstrip(" ") for line in block.replace("\\n", "\n").split("\n")]
    lines[0] = lines[0].removeprefix("<image> ")
    return [line for line in lines if not line.startswith("...")]  # "... Z. <class name Z>": the elided options


def test_mcq_prompt_has_the_papers_printed_layout():
    # Source: P1 (Liu et al., arXiv 2412.16418) section 3.2, the CUB example, as transcribed in
    # tasks/data/paper/prompts.md: "What species is the bird in this photo?\n Answer with the option's letter
    # from the given choices directly.\n A. <class name A>\n B. <class name B>\n ... Z. <class name Z>".
    from clsbench.tasks.protocol.questions import format_prompt, prompt_parts

    printed = _printed_block("P1 section 3.2")
    assert printed == [
        "What species is the bird in this photo?",
        "Answer with the option's letter from the given choices directly.",
        "A. <class name A>",
        "B. <class name B>",
    ]
    ours = format_prompt("What species is the bird in this photo?", ["<class name A>", "<class name B>"])
    assert ours == "\n".join(printed)  # clsbench 0.3: "... photo? Answer with ..." on one line
    assert prompt_parts(ours) == ("What species is the bird in this photo?", ("<class name A>", "<class name B>"))


def test_textonly_prompt_keeps_question_and_instruction_on_one_line_as_printed():
    # Source: P1 section 5.1, as transcribed in tasks/data/paper/prompts.md: "Here is a description of someone
    # object. <description> Can you tell me what object it describes? Answer with the option's letter from the
    # given choices directly.\n A. <class name A>\n B. <class name B>\n ... Z. <class name Z>".
    from clsbench.tasks.cls_mcq import utils
    from clsbench.tasks.protocol.questions import prompt_parts

    printed = _printed_block("P1 section 5.1")
    doc = {"dataset": "logo", "options": ["<class name A>", "<class name B>"], "description": "<description>"}
    ours = utils.cls_textonly_doc_to_text(doc)
    assert ours == "\n".join(printed)
    assert prompt_parts(ours)[0] == TEXTONLY_QUESTION.format(description="<description>")


def test_every_path_writes_the_same_mcq_prompt():
    """The lmms-eval hook, the VLMEvalKit export and `clsbench options` share format_prompt's layout."""
    from clsbench.tasks.cls_mcq import utils
    from clsbench.tasks.protocol.questions import format_prompt
    from clsbench.tasks.toolkits.vlmeval.rows import prompt_message

    options = ["Nike", "Puma", "Anta"]
    instruction = "Answer with the option's letter from the given choices directly."
    expected = f"Which logo is this?\n{instruction}\nA. Nike\nB. Puma\nC. Anta"
    assert format_prompt("Which logo is this?", options) == expected
    assert utils.cls_doc_to_text({"question": "Which logo is this?", "options": options}) == expected
    row = {"question": "Which logo is this?", "A": "Nike", "B": "Puma", "C": "Anta"}
    assert prompt_message(row, [])[-1]["value"] == expected


def test_oxford_pets_names_come_from_clip_benchmark_in_the_hub_cards_order():
    """The shipped list equals CLIP_benchmark's `pets` list and the Hub card's order; its note says so (issue 29)."""
    spec = DATASETS["pets"]
    source = spec.class_data["classnames_source"]
    assert source["repo"] == "github.com/LAION-AI/CLIP_benchmark" and source["key"] == "pets"
    assert "openai" not in source["repo"].lower() and "not this list's source" in source["note"]
    hub = spec.hub_labels["names"]
    assert [_comparable(name) for name in spec.classnames] == [_comparable(name) for name in hub]
    clip_benchmark = pytest.importorskip("clip_benchmark")
    from pathlib import Path

    theirs = json.loads((Path(clip_benchmark.__file__).parent / "datasets" / "en_classnames.json").read_text())["pets"]
    assert list(spec.classnames) == theirs
