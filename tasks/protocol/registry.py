"""The ten benchmark datasets: the one place that says where each comes from and what it holds.

Everything else (lmms-eval YAMLs, VLMEvalKit TSVs, CLIP baselines, the CLI, the fixtures) reads
this module. Class names and CLIP templates are package data in ``data/classes/*.json``, copied
with their source notes from the project's shared data (see ``data/SOURCES.md``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Literal

from clsbench.tasks.runtime.errors import UnknownNameError

Group = Literal["general", "fine-grained"]
DEFAULT_NAMES = "paper"  # the class-name set every protocol uses unless asked otherwise
GROUPS: tuple[Group, ...] = ("general", "fine-grained")


@dataclass(frozen=True)
class HubSource:
    """A split on the Hugging Face Hub, pinned to a commit so the rows never move.

    ``data_files`` names the split's own files (a glob inside the repo) and ``builder`` the
    ``datasets`` builder that reads them, so a load or a download fetches that split and nothing
    else (``load_dataset(repo)`` would download and prepare every split of the repo).
    """

    repo_id: str
    revision: str
    split: str
    data_files: str
    builder: str = "parquet"
    # None: not seen at the pinned revision, so the loader finds the column (data/loading.py discover_columns)
    image_column: str | None = "image"
    label_column: str | None = "label"

    @property
    def url(self) -> str:
        return f"https://huggingface.co/datasets/{self.repo_id}/tree/{self.revision}"

    @property
    def data_url(self) -> str:
        """The split's files as an ``hf://`` glob at the pinned revision."""
        return f"hf://datasets/{self.repo_id}@{self.revision}/{self.data_files}"

    def download_command(self, local_dir: str = "SNAPSHOT") -> str:
        """The ``hf`` command (huggingface_hub >= 1) that mirrors exactly this split's files."""
        return (
            f"hf download {self.repo_id} --repo-type dataset --revision {self.revision} "
            f"--include '{self.data_files}' --local-dir {local_dir}"
        )


@dataclass(frozen=True)
class LocalSource:
    """Data that is not on the Hub in the reference form; ``clsbench prepare`` builds it from raw files."""

    raw_form: str  # what the user passes as --source
    obtain: str  # where the raw files come from


@dataclass(frozen=True)
class DatasetSpec:
    key: str
    abbreviation: str  # column name in the paper's tables
    title: str
    group: Group | None  # None: an extra dataset, in no paper group (no average moves)
    expected_size: int  # Table 1 of the paper
    class_file: str  # in data/classes/: the class names shown by default (the paper's) and the CLIP templates
    source: HubSource | LocalSource
    questions: tuple[str, ...] = field(repr=False)
    note: str = ""
    # Other class-name sets for the same label indices, name -> file in data/classes/ (e.g. ImageNet's
    # OpenAI CLIP names beside the paper's WordNet lemmas). Each becomes a task variant and a CLI choice.
    alternative_names: dict[str, str] = field(default_factory=dict, repr=False)
    template_file: str | None = None  # where the CLIP templates are, when class_file has none
    aliases: tuple[str, ...] = ()  # other spellings of the dataset's name, accepted everywhere
    # CLIP_benchmark's names for this dataset, its benchmark name first (see clip_benchmark_names): the
    # names its clip_benchmark/datasets/builder.py dispatches on, `vtab/<name>` for build_vtab_dataset.
    clip_benchmark: tuple[str, ...] = ()
    in_paper: bool = True  # one of the paper's ten (False: an extra dataset outside its groups)

    @property
    def vlmeval_name(self) -> str:
        """The dataset's name in VLMEvalKit (avoids every substring that switches on special behaviour there)."""
        return f"ClsBench_{self.key}"

    def vlmeval_name_for(self, name_set: str = DEFAULT_NAMES) -> str:
        """The VLMEvalKit name of this dataset shown with another class-name set (``ClsBench_imagenet_openai``)."""
        return self.vlmeval_name if name_set == DEFAULT_NAMES else f"{self.vlmeval_name}_{name_set}"

    @property
    def is_local(self) -> bool:
        return isinstance(self.source, LocalSource)

    @property
    def class_data(self) -> dict:
        return _class_file(self.class_file)

    @property
    def classnames(self) -> tuple[str, ...] | None:
        """Class names in label order, or None where they come with the prepared data (gldv2)."""
        return self.names(DEFAULT_NAMES)

    @property
    def name_sets(self) -> tuple[str, ...]:
        """The class-name sets this dataset offers, the default first."""
        return (DEFAULT_NAMES, *self.alternative_names)

    def names(self, name_set: str = DEFAULT_NAMES) -> tuple[str, ...] | None:
        """Class names of one name set, in label order (None where they come with the prepared data)."""
        if name_set == DEFAULT_NAMES:
            names = self.class_data.get("classnames")
        elif name_set in self.alternative_names:
            names = _class_file(self.alternative_names[name_set])["classnames"]
        else:
            choices = ", ".join(self.name_sets)
            raise UnknownNameError(f"{self.key} has no class-name set {name_set!r}; choose one of: {choices}")
        return tuple(names) if names is not None else None

    @property
    def templates(self) -> tuple[str, ...]:
        """CLIP prompt templates with a ``{}`` placeholder (ImageNet's 80 where none was published)."""
        data = _class_file(self.template_file) if self.template_file else self.class_data
        return tuple(data.get("templates") or data["templates_alt_imagenet80"])

    @property
    def hub_labels(self) -> dict | None:
        """Evidence of the Hub split's label names at the pinned revision (data/hub_labels/), if recorded."""
        return _hub_labels(self.key) if isinstance(self.source, HubSource) else None


@cache
def _class_file(name: str) -> dict:
    return json.loads(resources.files("clsbench.tasks.data").joinpath("classes", name).read_text("utf-8"))


@cache
def _hub_labels(key: str) -> dict | None:
    path = resources.files("clsbench.tasks.data").joinpath("hub_labels", f"{key}.json")
    return json.loads(path.read_text("utf-8")) if path.is_file() else None


def _q(*questions: str) -> tuple[str, ...]:
    assert len(questions) == 10 and len(set(questions)) == 10, questions
    return questions


_OBJECT_QUESTIONS = _q(
    "What is the main object in this image?",
    "Which object is shown in this photo?",
    "What is depicted in this image?",
    "What category does the object in this picture belong to?",
    "Which of the following best describes the object in the image?",
    "What is the object in the center of this photo?",
    "Identify the object shown in this image.",
    "What kind of object can be seen in this picture?",
    "Which class does this image belong to?",
    "What does this photo show?",
)

DATASETS: dict[str, DatasetSpec] = {
    spec.key: spec
    for spec in (
        DatasetSpec(
            key="imagenet",
            abbreviation="IMN",
            title="ImageNet-1k (val)",
            group="general",
            expected_size=50_000,
            # The paper showed ImageNet classes by their first WordNet lemma (its Appendix D food list and
            # Table 8 use those strings); OpenAI's CLIP names stay one choice away.
            class_file="imagenet1k_paper_wordnet.json",
            aliases=("imagenet-1k",),
            clip_benchmark=("imagenet1k",),
            alternative_names={"openai": "imagenet1k.json"},
            template_file="imagenet1k.json",
            source=HubSource(
                "ILSVRC/imagenet-1k",
                "49e2ee26f3810fb5a7536bbf732a7b07389a47b5",
                "validation",
                data_files="data/validation-*.parquet",
            ),
            questions=_OBJECT_QUESTIONS,
            note="Gated on the Hub: accept the terms and log in (hf auth login). Read as parquet files "
            "so that no loading script is ever run.",
        ),
        DatasetSpec(
            key="imagenetv2",
            abbreviation="IMNv2",
            title="ImageNetV2 matched-frequency",
            aliases=("imagenet-v2", "imagenet_v2"),
            clip_benchmark=("imagenetv2",),
            group="general",
            expected_size=10_000,
            class_file="imagenetv2.json",
            source=HubSource(
                "djghosh/wds_imagenetv2_test",
                "622aa95311079dde7d64d541c411f7c8b796e6b5",
                "test",
                data_files="test/*.tar",
                builder="webdataset",  # named: with nshards.txt beside the shards, inference may pick "text"
                # The shard pattern and keys (webp/cls in sibling wds_* repos) were never read at this pin:
                # the loader discovers both columns and names what it found when it cannot.
                image_column=None,
                label_column=None,
            ),
            questions=_OBJECT_QUESTIONS,
            note="WebDataset copy used by DataComp's evaluation; labels are ImageNet-1k indices.",
        ),
        DatasetSpec(
            key="objectnet",
            abbreviation="ONet",
            clip_benchmark=("objectnet",),
            title="ObjectNet (313 classes)",
            group="general",
            expected_size=50_000,
            class_file="objectnet_313.json",
            source=LocalSource(
                raw_form="the unpacked objectnet-1.0/ folder "
                "(images/<class folder>/*.png and mappings/folder_to_objectnet_label.json)",
                obtain="https://objectnet.dev (licence: no training on it; keep the 1-pixel border on posted images)",
            ),
            questions=_OBJECT_QUESTIONS,
            note="Paper order of class names; prepare maps folders to them by label string.",
        ),
        DatasetSpec(
            key="caltech101",
            abbreviation="C101",
            clip_benchmark=("vtab/caltech101", "caltech101"),
            title="Caltech-101 (CoOp test split)",
            group="general",
            expected_size=4_331,
            class_file="caltech101.json",
            source=LocalSource(
                raw_form="the 101_ObjectCategories/ folder (one subfolder per class; BACKGROUND_Google is skipped)",
                obtain="https://data.caltech.edu/records/mzrjq-6wc02 (or torchvision's Caltech101(download=True))",
            ),
            note="CoOp's rule (per class, test = n - round(n/2)) gives the paper's 4,331 images; CoOp's seeded "
            "shuffle cannot be reproduced, so which images are test is fixed by a documented hash rule instead.",
            questions=_q(
                "What is the main object in this image?",
                "Which object category is shown in this photo?",
                "What is depicted in this picture?",
                "What category does the object in this image belong to?",
                "Which of the following best describes what is shown?",
                "What object can be seen in this image?",
                "Identify the object category of this image.",
                "What kind of thing is shown in this photo?",
                "Which class does this picture belong to?",
                "What is the subject of this image?",
            ),
        ),
        DatasetSpec(
            key="cub200",
            abbreviation="CUB",
            clip_benchmark=("vtab/cub",),
            title="CUB-200-2011",
            group="fine-grained",
            expected_size=5_794,
            class_file="cub200.json",
            source=HubSource(
                "bentrevett/caltech-ucsd-birds-200-2011",
                "1ef09e021b0b65b40337f6f285909656f407f6e0",
                "test",
                data_files="data/test-*.parquet",
            ),
            questions=_q(
                "What species is the bird in this photo?",
                "Which bird species is shown in this image?",
                "What kind of bird is this?",
                "Identify the species of the bird in this picture.",
                "Which of the following bird species appears in the image?",
                "What is the name of the bird species shown here?",
                "To which species does the bird in this photo belong?",
                "What type of bird can be seen in this image?",
                "Which bird is depicted in this picture?",
                "What bird species is this?",
            ),
        ),
        DatasetSpec(
            key="food101",
            abbreviation="Food",
            clip_benchmark=("food101", "vtab/food101"),
            title="Food-101",
            group="fine-grained",
            expected_size=25_250,
            class_file="food101.json",
            source=HubSource(
                "ethz/food101",
                "1ac27ab4707a642b84c229d077056d0f25a62fa7",
                "validation",
                data_files="data/validation-*.parquet",
            ),
            questions=_q(
                "What dish is shown in this photo?",
                "Which food is shown in this image?",
                "What kind of food is this?",
                "Identify the dish in this picture.",
                "Which of the following dishes appears in the image?",
                "What is the name of the food shown here?",
                "What type of dish can be seen in this image?",
                "Which food category does this dish belong to?",
                "What is being served in this photo?",
                "What food is this?",
            ),
            note="The split named 'validation' is the official Food-101 test set. Read as parquet because "
            "this revision still carries a loading script that datasets>=4 refuses.",
        ),
        DatasetSpec(
            key="gldv2",
            abbreviation="GLMK",
            title="Google Landmarks v2 (test subset)",
            group="fine-grained",
            expected_size=1_655,
            class_file="gldv2_subset.json",
            source=LocalSource(
                raw_form="a folder with recognition_solution_v2.1.csv, train_label_to_category.csv and test/ "
                "(the test images, any nesting, named <id>.jpg)",
                obtain="https://github.com/cvdfoundation/google-landmark (test set and metadata CSVs)",
            ),
            questions=_q(
                "Which landmark is shown in this photo?",
                "What is the name of the landmark in this image?",
                "Which famous place is depicted in this picture?",
                "Identify the landmark shown in this image.",
                "Which of the following landmarks appears in the photo?",
                "What landmark can be seen in this picture?",
                "Where was this photo taken?",
                "Which site is shown in this image?",
                "What is the landmark in this photo called?",
                "Which building or place is this?",
            ),
            note="The paper's 1,655-image / 709-class subset is not public; prepare takes every test image with "
            "a landmark label (or the ids in --subset FILE). Class names come with the prepared data.",
        ),
        DatasetSpec(
            key="logo",
            abbreviation="Logo",
            title="FlickrSportLogos-10",
            group="fine-grained",
            expected_size=500,
            class_file="flickr_sport_logos10.json",
            source=LocalSource(
                raw_form="a checkout of the FlickrSportLogos-10 repository (dataset/test.txt and dataset/JPEGImages/)",
                obtain="https://github.com/sunshine-joe/FlickrSportLogos-10 (commit fa2c9e3)",
            ),
            questions=_q(
                "Which brand's logo is shown in this image?",
                "What sports brand does this logo belong to?",
                "Which company's logo appears in this photo?",
                "Identify the brand of the logo in this picture.",
                "Which of the following brands is shown in the image?",
                "What is the brand of the logo in this photo?",
                "Whose logo can be seen in this image?",
                "Which sportswear brand is depicted here?",
                "What brand does the logo in this picture represent?",
                "Which logo is this?",
            ),
        ),
        DatasetSpec(
            key="flowers102",
            abbreviation="Flower",
            title="Oxford Flowers-102",
            clip_benchmark=("vtab/flowers", "flowers"),
            group="fine-grained",
            expected_size=6_149,
            class_file="flowers102.json",
            source=HubSource(
                "dpdl-benchmark/oxford_flowers102",
                "544b55c9af69a05742ead7571cd7ae23cfcd758b",
                "test",
                data_files="data/test-*.parquet",
            ),
            questions=_q(
                "What species of flower is shown in this photo?",
                "Which flower is shown in this image?",
                "What kind of flower is this?",
                "Identify the flower in this picture.",
                "Which of the following flowers appears in the image?",
                "What is the name of the flower shown here?",
                "What type of flower can be seen in this image?",
                "Which plant species is in bloom in this photo?",
                "What flower is depicted in this picture?",
                "What flower is this?",
            ),
        ),
        DatasetSpec(
            key="stanfordcars",
            abbreviation="SCar",
            title="Stanford Cars",
            clip_benchmark=("cars", "vtab/cars"),
            group="fine-grained",
            expected_size=8_041,
            class_file="stanford_cars.json",
            source=HubSource(
                "tanganke/stanford_cars",
                "9abf6cf7d6dfa7b95152a0d6e791ea9435b47a40",
                "test",
                data_files="data/test-*.parquet",  # the repo also holds train and 7 corruption splits (~5 GB)
            ),
            questions=_q(
                "Which car model is shown in this image?",
                "What is the make, model and year of this car?",
                "What kind of car is this?",
                "Identify the car model in this picture.",
                "Which of the following cars appears in the image?",
                "What is the name of the car shown here?",
                "What car can be seen in this photo?",
                "Which vehicle model is depicted in this picture?",
                "What model of car is in this image?",
                "Which car is this?",
            ),
        ),
        # Extra, outside the paper's groups: the fourth dataset of "Understanding the Fine-Grained Knowledge
        # Capabilities of Vision-Language Models"; one registry entry plus its class list and Hub label evidence.
        DatasetSpec(
            key="pets",
            abbreviation="Pet",
            title="Oxford-IIIT Pet",
            aliases=("oxford_pets", "oxford-iiit-pet"),
            clip_benchmark=("vtab/pets", "pets"),
            group=None,
            in_paper=False,
            expected_size=3_669,
            class_file="oxford_pets.json",
            source=HubSource(
                "timm/oxford-iiit-pet",
                "10b688881011725fa2fa3d856a47536c9a7e6968",
                "test",
                data_files="data/test-*.parquet",  # 413 MB; the repo also holds the 3,680-image trainval split
            ),
            questions=_q(
                "What breed is the pet in this photo?",
                "Which breed of cat or dog is shown in this image?",
                "What kind of pet is this?",
                "Identify the breed of the animal in this picture.",
                "Which of the following breeds appears in the image?",
                "What is the breed of the animal shown here?",
                "What type of cat or dog can be seen in this image?",
                "Which breed does this pet belong to?",
                "What breed is depicted in this picture?",
                "What breed is this?",
            ),
            note="Question wordings are clsbench's own (the paper that uses Pet asks one fixed question: the "
            "_cliphard variant); class names and template are OpenAI CLIP's.",
        ),
    )
}


def get_dataset(key: str) -> DatasetSpec:
    """The spec for a dataset key (or any name :func:`dataset_for_name` knows), with the valid keys in the error."""
    found = key if key in DATASETS else dataset_for_name(key)
    if found is None:
        raise UnknownNameError(f"unknown dataset {key!r}; choose one of: {', '.join(DATASETS)}") from None
    return DATASETS[found]


def as_spec(dataset: str | DatasetSpec) -> DatasetSpec:
    """``dataset`` itself when it is a spec (passed down from the command line), else the spec :func:`get_dataset`
    finds for the name: the functions below the command line take either and look a name up once."""
    return dataset if isinstance(dataset, DatasetSpec) else get_dataset(dataset)


def dataset_for_name(name: object) -> str | None:
    """The dataset key a name means: a key, a paper abbreviation, a VLMEvalKit name or another tool's alias
    (CLIP_benchmark's ``cars``, ``imagenet1k``, ``flowers``); None when it is none of them."""
    text = str(name).strip()
    for key, spec in DATASETS.items():
        if (
            text == key
            or text == spec.abbreviation
            or text in spec.aliases
            or text in clip_benchmark_names(spec)
            or text in (spec.vlmeval_name_for(name_set) for name_set in spec.name_sets)
        ):
            return key
    return None


def clip_benchmark_names(spec: DatasetSpec) -> tuple[str, ...]:
    """Every name CLIP_benchmark (LAION-AI/CLIP_benchmark 1.6) gives this dataset, derived from ``spec.clip_benchmark``.

    Its rules, read from its code and lists: ``clip_benchmark/datasets/builder.py`` dispatches on a plain
    name (``cars``) or ``vtab/<name>`` and looks class names and templates up by the part after ``vtab/``
    too (``cub``); a WebDataset copy is ``wds/<name>`` (its README; ``benchmark/webdatasets.txt``:
    ``wds/imagenet1k``, ``wds/vtab/caltech101``, ...), named ``wds/vtab-<name>`` in the older
    ``benchmark/wds_datasets.txt`` after the Hub repos ``clip-benchmark/wds_vtab-<name>``.
    """
    names: list[str] = []
    for name in spec.clip_benchmark:
        short = name.removeprefix("vtab/")
        names += [name, short, f"wds/{name}", f"wds/{name.replace('/', '-')}"]
    return tuple(dict.fromkeys(names))


def datasets_in_group(group: Group) -> list[DatasetSpec]:
    """A paper group's datasets, in registry order: the one definition of group membership."""
    return [spec for spec in DATASETS.values() if spec.group == group]


def paper_datasets() -> list[DatasetSpec]:
    """The paper's datasets (every group's), in registry order; extras such as Pet are not among them."""
    return [spec for spec in DATASETS.values() if spec.in_paper]
