"""``prepare`` on tiny raw folders of every form: splits, label mapping, determinism and the errors."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import datasets
import pytest
from PIL import Image

from clsbench.tasks.data.loading import DataError, find_prepared
from clsbench.tasks.data.prepare import caltech101_test_files, gldv2_classname, prepare
from clsbench.tasks.protocol.registry import get_dataset


def image_bytes(seed: int, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (seed * 37 % 256, seed * 91 % 256, seed * 13 % 256)).save(buffer, format=fmt)
    return buffer.getvalue()


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def rows_of(prepared) -> list[dict]:
    rows = read_prepared(prepared)
    return [{"source_id": row["source_id"], "label": row["label"]} for row in rows]


def read_prepared(prepared):
    cache = prepared.root.parent / ".test-cache"
    return datasets.load_dataset("parquet", data_files=prepared.parquet_glob, split="train", cache_dir=str(cache))


def shard_bytes(prepared) -> list[bytes]:
    return [path.read_bytes() for path in sorted((prepared.root / "data").glob("test-*.parquet"))]


# --- Caltech-101 ----------------------------------------------------------------------------------

CALTECH = {"Faces_easy": 5, "accordion": 4, "leopards": 3, "BACKGROUND_Google": 2}  # lowercase like HF copies


@pytest.fixture
def caltech_raw(tmp_path: Path) -> Path:
    root = tmp_path / "101_ObjectCategories"
    seed = 0
    for folder, count in CALTECH.items():
        for index in range(count):
            seed += 1
            put(root / folder / f"image_{index + 1:04d}.jpg", image_bytes(seed))
    put(root / "accordion" / ".DS_Store", b"junk")  # hidden files are not images
    return root


def test_caltech101_split_labels_and_determinism(caltech_raw: Path, tmp_path: Path):
    prepared = prepare("caltech101", caltech_raw, tmp_path / "out")
    names = prepared.classnames
    rows = rows_of(prepared)
    expected_ids = []
    for folder, canonical, classname in [
        ("Faces_easy", "Faces_easy", "centered face"),
        ("accordion", "accordion", "accordion"),
        ("leopards", "Leopards", "leopard"),
    ]:
        n = CALTECH[folder]
        files = [f"image_{index + 1:04d}.jpg" for index in range(n)]
        test = caltech101_test_files(canonical, files)
        assert len(test) == n - round(0.5 * n)  # 5 -> 3 (round(2.5) = 2 train), 4 -> 2, 3 -> 1 (round(1.5) = 2)
        by_hash = sorted(
            files, key=lambda f: hashlib.sha256(f"clsbench-caltech101|{canonical}/{f}".encode()).hexdigest()
        )
        assert test == set(by_hash[round(0.5 * n) :])
        got = [row for row in rows if row["source_id"].startswith(canonical + "/")]
        assert {row["source_id"] for row in got} == {f"{canonical}/{f}" for f in test}
        assert {names[row["label"]] for row in got} == {classname}
        expected_ids += sorted(f"{canonical}/{f}" for f in test)
    # rows in label order (centered face 1, leopard 2, accordion 4), then file name; no background
    classname_of = {"Faces_easy": "centered face", "accordion": "accordion", "Leopards": "leopard"}
    label_order = sorted(expected_ids, key=lambda sid: (names.index(classname_of[sid.split("/")[0]]), sid))
    assert [row["source_id"] for row in rows] == label_order
    assert prepared.meta["rows"] == 3 + 2 + 1
    assert "round(0.5 * n)" in prepared.meta["provenance"]["split_rule"]
    assert prepared.meta["provenance"]["images_found"] == 12

    again = prepare("caltech101", caltech_raw, tmp_path / "out2")
    assert shard_bytes(again) == shard_bytes(prepared)


def test_caltech101_split_ignores_folder_case(caltech_raw: Path, tmp_path: Path):
    upper = tmp_path / "Upper"
    for path in caltech_raw.rglob("*.jpg"):
        folder = {"leopards": "Leopards", "faces_easy": "Faces_easy"}.get(path.parent.name.lower(), path.parent.name)
        put(upper / folder / path.name, path.read_bytes())
    assert rows_of(prepare("caltech101", upper, tmp_path / "a")) == rows_of(
        prepare("caltech101", caltech_raw, tmp_path / "b")
    )


def test_caltech101_unknown_folder(caltech_raw: Path, tmp_path: Path):
    put(caltech_raw / "unicorn" / "image_0001.jpg", image_bytes(1))
    with pytest.raises(DataError, match="'unicorn'"):
        prepare("caltech101", caltech_raw, tmp_path / "out")


# --- ObjectNet ------------------------------------------------------------------------------------


def make_objectnet(root: Path, mapping: dict[str, str], per_folder: int = 2) -> Path:
    for offset, folder in enumerate(mapping):
        for index in range(per_folder):
            put(root / "images" / folder / f"{index:03d}.png", image_bytes(offset * 10 + index, "PNG"))
    put(root / "mappings" / "folder_to_objectnet_label.json", json.dumps(mapping).encode())
    return root


def test_objectnet_maps_labels_ignoring_case_and_spaces(tmp_path: Path):
    raw = make_objectnet(
        tmp_path / "objectnet-1.0", {"hair_dryer": "Hairdryer", "alarm_clock": "alarm clock", "banana": "Banana"}
    )
    prepared = prepare("objectnet", raw, tmp_path / "out")
    rows = rows_of(prepared)
    assert [row["source_id"] for row in rows] == [
        "alarm_clock/000.png",
        "alarm_clock/001.png",
        "banana/000.png",
        "banana/001.png",
        "hair_dryer/000.png",
        "hair_dryer/001.png",
    ]
    assert [prepared.classnames[row["label"]] for row in rows[::2]] == ["Alarm clock", "Banana", "Hair dryer"]
    assert len(prepared.classnames) == 313


def test_objectnet_errors(tmp_path: Path):
    raw = make_objectnet(tmp_path / "a", {"flux": "Flux capacitor"})
    with pytest.raises(DataError, match="'flux'.*'Flux capacitor'"):
        prepare("objectnet", raw, tmp_path / "out")
    raw = make_objectnet(tmp_path / "b", {"banana": "Banana"})
    put(raw / "images" / "mystery" / "000.png", image_bytes(1, "PNG"))
    with pytest.raises(DataError, match="'mystery'"):
        prepare("objectnet", raw, tmp_path / "out")
    (raw / "mappings" / "folder_to_objectnet_label.json").unlink()
    with pytest.raises(DataError, match="folder_to_objectnet_label.json is missing.*objectnet-1.0"):
        prepare("objectnet", raw, tmp_path / "out")


def test_corrupt_image_is_named_or_skipped(tmp_path: Path):
    raw = make_objectnet(tmp_path / "objectnet-1.0", {"banana": "Banana"}, per_folder=3)
    put(raw / "images" / "banana" / "001.png", b"not a png")
    with pytest.raises(DataError, match="banana/001.png.*corrupt"):
        prepare("objectnet", raw, tmp_path / "out")
    prepared = prepare("objectnet", raw, tmp_path / "out", skip_corrupt=True)
    assert [row["source_id"] for row in rows_of(prepared)] == ["banana/000.png", "banana/002.png"]
    meta = json.loads((prepared.root / "clsbench.json").read_text())
    assert [entry["source_id"] for entry in meta["skipped"]] == ["banana/001.png"]


# --- Google Landmarks v2 --------------------------------------------------------------------------

GLD_SOLUTION = [
    ("id", "landmarks", "Usage"),
    ("00aa", "100", "Public"),
    ("00bb", "12", "Private"),
    ("00cc", "5", "Public"),
    ("00dd", "12 100", "Public"),  # two landmarks: left out
    ("00ee", "", "Private"),  # no landmark: left out
    ("00ff", "7", "Public"),  # no image: left out
    ("0a11", "12", "Public"),
]
GLD_CATEGORIES = [
    ("landmark_id", "category"),
    ("5", "http://commons.wikimedia.org/wiki/Category:Big_Ben"),
    ("7", "http://commons.wikimedia.org/wiki/Category:Colosseum"),
    ("12", "http://commons.wikimedia.org/wiki/Category:Sagrada_Fam%C3%ADlia"),
    ("100", "http://commons.wikimedia.org/wiki/Category:Big_Ben"),
]


@pytest.fixture
def gld_raw(tmp_path: Path) -> Path:
    root = tmp_path / "gldv2"
    for name, table in [
        ("recognition_solution_v2.1.csv", GLD_SOLUTION),
        ("train_label_to_category.csv", GLD_CATEGORIES),
    ]:
        put(root / name, "\n".join(",".join(row) for row in table).encode() + b"\n")
    for seed, test_id in enumerate(["00aa", "00bb", "00cc", "00dd", "00ee", "0a11"]):
        put(root / "test" / test_id[0] / test_id[1] / test_id[2] / f"{test_id}.jpg", image_bytes(seed))
    return root


def test_gldv2_classes_from_urls(gld_raw: Path, tmp_path: Path):
    prepared = prepare("gldv2", gld_raw, tmp_path / "out")
    # landmark ids sorted numerically (5, 12, 100), clashing names disambiguated
    assert prepared.classnames == ("Big Ben (landmark 5)", "Sagrada Família", "Big Ben (landmark 100)")
    rows = rows_of(prepared)
    assert [(row["source_id"], row["label"]) for row in rows] == [("00aa", 2), ("00bb", 1), ("00cc", 0), ("0a11", 1)]
    provenance = prepared.meta["provenance"]
    assert provenance["multi_landmark_ids_left_out"] == 1 and provenance["labelled_ids_without_image"] == 1
    assert read_prepared(prepared).features["label"].names == list(prepared.classnames)
    assert (
        gldv2_classname("http://commons.wikimedia.org/wiki/Category:Ch%C3%A2teau_de_Chambord") == "Château de Chambord"
    )


def test_gldv2_subset(gld_raw: Path, tmp_path: Path):
    subset = put(tmp_path / "ids.txt", b"0a11\n00cc\n\n")
    prepared = prepare("gldv2", gld_raw, tmp_path / "out", subset=subset)
    assert prepared.classnames == ("Big Ben", "Sagrada Família")
    assert [(row["source_id"], row["label"]) for row in rows_of(prepared)] == [("00cc", 0), ("0a11", 1)]
    bad = put(tmp_path / "bad.txt", b"00cc\n00ff\n00dd\n")
    with pytest.raises(DataError, match="2 of 3 ids"):
        prepare("gldv2", gld_raw, tmp_path / "out", subset=bad)


# --- FlickrSportLogos-10 --------------------------------------------------------------------------


@pytest.fixture
def logo_raw(tmp_path: Path) -> Path:
    root = tmp_path / "FlickrSportLogos-10"
    for seed, image_id in enumerate(["nike_0001", "Adidas_0002", "361_0003", "puma_0004", "lining_0005"]):
        put(root / "dataset" / "JPEGImages" / f"{image_id}.jpg", image_bytes(seed))
    put(root / "dataset" / "test.txt", b"nike_0001\nAdidas_0002\n361_0003\n\n")  # puma/lining are train images
    return root


def test_logo_labels_from_prefix(logo_raw: Path, tmp_path: Path):
    prepared = prepare("logo", logo_raw, tmp_path / "out")
    rows = rows_of(prepared)
    assert [(row["source_id"], prepared.classnames[row["label"]]) for row in rows] == [
        ("361_0003", "361 Degrees"),
        ("Adidas_0002", "Adidas"),
        ("nike_0001", "Nike"),
    ]
    found = find_prepared("logo", tmp_path / "out")
    assert found is not None and found.meta["rows"] == 3
    loaded = read_prepared(found)
    assert loaded.column_names == ["image", "label", "source_id"]
    assert loaded.features["label"].names == list(get_dataset("logo").classnames)
    assert loaded[0]["image"].size == (8, 8)


def test_logo_errors(logo_raw: Path, tmp_path: Path):
    (logo_raw / "dataset" / "test.txt").write_text("nike_0001\nreebok_0009\n")
    with pytest.raises(DataError, match="'reebok_0009'"):
        prepare("logo", logo_raw, tmp_path / "out")
    (logo_raw / "dataset" / "test.txt").write_text("nike_0001\nnike_0404\n")
    with pytest.raises(DataError, match="'nike_0404'.*missing"):
        prepare("logo", logo_raw, tmp_path / "out")


# --- Hub snapshots --------------------------------------------------------------------------------


def make_snapshot(root: Path, key: str, split_file: str, labels: list[int]) -> Path:
    names = list(get_dataset(key).classnames)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    for file, rows in [(split_file, labels), ("data/train-00000-of-00001.parquet", [0])]:
        images = [{"bytes": image_bytes(index + label), "path": None} for index, label in enumerate(rows)]
        root.joinpath(file).parent.mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_dict({"image": images, "label": rows}, features=features).to_parquet(str(root / file))
    return root


@pytest.mark.parametrize(
    ("key", "split_file"),
    [("flowers102", "data/test-00000-of-00001.parquet"), ("food101", "data/validation-00000-of-00001.parquet")],
)
def test_hub_snapshot_keeps_row_order(key: str, split_file: str, tmp_path: Path):
    labels = [5, 0, 100, 5, 42]
    snapshot = make_snapshot(tmp_path / "snapshot", key, split_file, labels)
    prepared = prepare(key, snapshot, tmp_path / "out")
    loaded = read_prepared(prepared)
    assert loaded["source_id"] == ["0", "1", "2", "3", "4"]
    assert loaded["label"] == labels
    assert loaded.features["label"].names == list(get_dataset(key).classnames)
    assert prepared.meta["provenance"]["revision"] == get_dataset(key).source.revision
    assert not list((tmp_path / "out").glob(".*-arrow-*"))  # the Arrow copy is cleaned up


def test_hub_snapshot_revision_is_checked(tmp_path: Path):
    snapshot = make_snapshot(tmp_path / "snapshot", "flowers102", "data/test-00000-of-00001.parquet", [1])
    metadata = snapshot / ".cache/huggingface/download/data/test-00000-of-00001.parquet.metadata"
    pinned = get_dataset("flowers102").source.revision
    put(metadata, f"{pinned}\netag\n0\n".encode())  # what huggingface-cli download --local-dir leaves
    assert prepare("flowers102", snapshot, tmp_path / "out").meta["provenance"]["snapshot_revision"] == pinned
    put(metadata, b"deadbeef\netag\n0\n")
    with pytest.raises(DataError, match="deadbeef"):
        prepare("flowers102", snapshot, tmp_path / "out")


def test_hub_webdataset_snapshot(tmp_path: Path):
    """imagenetv2's pinned repo is WebDataset shards (webp/cls), like DataComp's wds_* copies."""
    snapshot = tmp_path / "snapshot"
    labels = [3, 999, 0, 3]
    for shard in range(2):
        put(snapshot / "test" / f"{shard}.tar", b"")
        with tarfile.open(snapshot / "test" / f"{shard}.tar", "w") as tar:
            for index in range(2):
                for ext, data in [
                    ("webp", image_bytes(index, "WEBP")),
                    ("cls", str(labels[shard * 2 + index]).encode()),
                ]:
                    info = tarfile.TarInfo(f"s{shard}{index:04d}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    put(snapshot / "test" / "nshards.txt", b"2\n")
    put(snapshot / "classnames.txt", b"tench\n")
    prepared = prepare("imagenetv2", snapshot, tmp_path / "out")
    loaded = read_prepared(prepared)
    assert loaded["source_id"] == ["0", "1", "2", "3"] and loaded["label"] == labels
    assert loaded[0]["image"].format == "WEBP"


# --- source errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["caltech101", "gldv2", "cub200"])
def test_missing_source(key: str, tmp_path: Path):
    expected = (
        "101_ObjectCategories" if key == "caltech101" else "recognition_solution" if key == "gldv2" else "snapshot"
    )
    with pytest.raises(DataError, match=f"not a folder.*{expected}"):
        prepare(key, tmp_path / "nowhere", tmp_path / "out")


def test_missing_expected_file(gld_raw: Path, tmp_path: Path):
    (gld_raw / "train_label_to_category.csv").unlink()
    with pytest.raises(DataError, match="train_label_to_category.csv is missing"):
        prepare("gldv2", gld_raw, tmp_path / "out")


def test_failed_rebuild_keeps_the_previous_copy(logo_raw: Path, tmp_path: Path):
    out = tmp_path / "out"
    first = prepare("logo", logo_raw, out)
    rows = rows_of(first)
    broken = next((logo_raw / "dataset" / "JPEGImages").glob("*.jpg"))
    broken.write_bytes(b"truncated")
    with pytest.raises(DataError, match="corrupt or unreadable image"):
        prepare("logo", logo_raw, out)
    again = find_prepared("logo", out)
    assert again is not None and rows_of(again) == rows
    assert not list(out.glob(".logo.partial"))


def test_large_copies_are_sharded_in_order(tmp_path: Path):
    from clsbench.tasks.data.loading import write_prepared

    records = [(f"img/{i}.png", image_bytes(i, "PNG"), i % 3) for i in range(7)]
    prepared = write_prepared(tmp_path / "logo", "logo", records, get_dataset("logo").classnames, {}, shard_bytes=1)
    assert len(list((prepared.root / "data").glob("test-*-of-00007.parquet"))) == 7
    assert [row["source_id"] for row in rows_of(prepared)] == [f"img/{i}.png" for i in range(7)]


def test_hub_snapshot_with_shards_elsewhere_names_what_it_found(tmp_path: Path):
    """The shard pattern test/*.tar was read from sibling repositories, not at the pin: a miss lists the files."""
    from clsbench.tasks.data.loading import HubLayoutError

    snapshot = tmp_path / "snapshot"
    put(snapshot / "shards" / "000000.tar", b"")
    put(snapshot / "nshards.txt", b"1\n")
    with pytest.raises(
        HubLayoutError, match=r"no file in .* matches 'test/\*\.tar'.*found nshards.txt, shards/000000.tar"
    ):
        prepare("imagenetv2", snapshot, tmp_path / "out")
