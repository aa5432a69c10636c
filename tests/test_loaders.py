"""Dataset loaders against the real samples in ../shared, both LWIR-IQA layouts, CSV folders,
and every bad-input case a user can cause."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import THERMAL_REAL
from PIL import Image

from iqabench.data import load_dataset
from iqabench.data.lwir_iqa import parse_name
from iqabench.errors import DatasetError, UnknownNameError


def _published(folder: Path) -> dict[str, float]:
    with open(folder / "scores.csv", encoding="utf-8") as handle:
        return {
            row["Distorted_image"]: float(row["MOS"])
            for row in csv.DictReader(handle, delimiter=";")
        }


def test_lwir_iqa_sample_counts_mos_types_levels(shared: Path) -> None:
    folder = THERMAL_REAL / "lwir_iqa_sample"
    dataset = load_dataset("LWIR_IQA", folder)
    published = _published(folder)
    assert len(dataset) == len(published) == 15
    for item in dataset:
        assert item.mos == published[item.image.name]
        scene, kind, level = parse_name(item.image.name)
        assert (item.content, item.distortion, item.level) == (scene, kind, level)
        assert item.ref is None  # the sample has no original/ folder
    assert sorted(dataset.distortions) == ["AWGN", "BLU", "J2K", "JPG", "NU"]
    nu9 = [i for i in dataset if i.content == "IMG_09" and i.distortion == "NU"]
    assert sorted(i.level for i in nu9) == [1, 2, 4]


def test_parse_name() -> None:
    assert parse_name("IMG_09_NU (4).bmp") == ("IMG_09", "NU", 4)
    assert parse_name("img_12_awgn(5).BMP") == ("IMG_12", "AWGN", 5)
    assert parse_name("IMG_07_J2K (1).bmp") == ("IMG_07", "J2K", 1)
    assert parse_name("holiday.bmp") is None


def test_lwir_iqa_links_references_when_present(shared: Path, tmp_path: Path) -> None:
    root = tmp_path / "lwir"
    shutil.copytree(THERMAL_REAL / "lwir_iqa_sample", root)
    (root / "original").mkdir()
    Image.new("L", (384, 288)).save(root / "original" / "IMG_09.bmp")
    dataset = load_dataset("lwir-iqa", root)
    with_ref = [i for i in dataset if i.ref is not None]
    assert {i.content for i in with_ref} == {"IMG_09"} and len(with_ref) == 3
    assert dataset.has_references


def test_lwir_iqa_release_layout_with_xlsx(shared: Path, tmp_path: Path) -> None:
    import openpyxl

    source = THERMAL_REAL / "lwir_iqa_sample"
    folders = {
        "AWGN": "white-noise",
        "BLU": "blurring",
        "NU": "non-uniformity",
        "JPG": "jpeg",
        "J2K": "jpeg2000",
    }
    root = tmp_path / "release"
    published = _published(source)
    for name in published:
        folder = root / folders[parse_name(name)[1]]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / name, folder / name)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["LWIR-IQA subjective scores"])  # a title row before the header
    sheet.append(["Image name", "MOS", "Std"])
    for name, mos in published.items():
        sheet.append([Path(name).stem, mos, 0.5])  # names without extension
    book.save(root / "scores.xlsx")
    dataset = load_dataset("LWIR_IQA", root)
    assert len(dataset) == 15
    assert {i.image.name: i.mos for i in dataset} == published
    assert all(i.image.parent.name == folders[i.distortion] for i in dataset)


def test_lwir_iqa_xlsx_without_recognisable_columns(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["a", "b"])
    book.active.append([1, 2])
    book.save(tmp_path / "scores.xlsx")
    with pytest.raises(DatasetError, match="image-name and a MOS column"):
        load_dataset("LWIR_IQA", tmp_path)


def test_tiiqad_sample(shared: Path) -> None:
    folder = THERMAL_REAL / "tiiqad_sample"
    dataset = load_dataset("TIIQAD", folder)
    published = _published(folder)
    assert len(dataset) == 15 and not dataset.has_references
    assert {i.image.name: i.mos for i in dataset} == published
    assert all(i.image.is_file() for i in dataset)
    assert len(set(dataset.contents)) == 15


def _csv_folder(
    tmp_path: Path, rows: list[str], header: str = "image,ref,mos,distortion,level,content"
) -> Path:
    for name in ("a.png", "b.png", "r.png"):
        Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / name)
    (tmp_path / "scores.csv").write_text("\n".join([header, *rows]) + "\n")
    return tmp_path


def test_csv_folder_full_columns(tmp_path: Path) -> None:
    root = _csv_folder(tmp_path, ["a.png,r.png,4.5,blur,1,scene1", "b.png,r.png,2.0,blur,3,"])
    dataset = load_dataset("csv", root)
    first, second = dataset.items
    assert (first.mos, first.distortion, first.level, first.content) == (4.5, "blur", 1, "scene1")
    assert second.content == "r"  # defaults to the reference's stem
    assert first.ref == root / "r.png"


def test_csv_folder_semicolons_and_lower_is_better(tmp_path: Path) -> None:
    root = _csv_folder(tmp_path, ["a.png;30", "b.png;60"], header="image;dmos")
    dataset = load_dataset("csv", root, lower_is_better=True)
    assert [i.quality for i in dataset] == [-30.0, -60.0]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("../outside.png,,4.0,,,", "escapes"),
        ("/etc/passwd,,4.0,,,", "absolute path"),
        ("a.png,,good,,,", "line 2: mos 'good' is not a number"),
        ("a.png,,,,,", r"line 2: mos '\(empty\)' is not a number"),
        ("a.png,,nan,,,", "not a finite number"),
    ],
)
def test_csv_folder_bad_rows(tmp_path: Path, row: str, message: str) -> None:
    root = _csv_folder(tmp_path, [row])
    with pytest.raises(DatasetError, match=message):
        load_dataset("csv", root)


def test_csv_folder_missing_column_and_empty_table(tmp_path: Path) -> None:
    root = _csv_folder(tmp_path, ["a.png"], header="image")
    with pytest.raises(DatasetError, match="no score"):
        load_dataset("csv", root)
    (root / "scores.csv").write_text("image,mos\n")
    with pytest.raises(DatasetError, match="lists no images"):
        load_dataset("csv", root)
    with pytest.raises(DatasetError, match="score table not found"):
        load_dataset("csv", root, csv=root / "absent.csv")


def test_missing_root_says_how_to_obtain(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="root not found.*obtain it.*10.2478/jee-2022-0011"):
        load_dataset("LWIR_IQA", tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="needs --data-root"):
        load_dataset("TIIQAD")


def test_unknown_dataset_suggests_closest() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'TIIQAD'"):
        load_dataset("TIIQD")


def test_a_folder_of_the_other_layout_is_refused_in_one_line(shared: Path) -> None:
    with pytest.raises(DatasetError, match="line 2: '138.jpg' is not an LWIR-IQA image name"):
        load_dataset("LWIR_IQA", THERMAL_REAL / "tiiqad_sample")
    # TIIQAD makes every image its own scene: LWIR-IQA images there would leak scenes.
    with pytest.raises(DatasetError, match="is an LWIR-IQA name.*--dataset LWIR_IQA"):
        load_dataset("TIIQAD", THERMAL_REAL / "lwir_iqa_sample")


def test_csv_loader_takes_the_reference_codes_header(shared: Path) -> None:
    dataset = load_dataset("csv", THERMAL_REAL / "lwir_iqa_sample")  # Distorted_image;MOS
    assert len(dataset.items) == 15
    assert dataset.items[0].id == "IMG_09_NU (1).bmp" and dataset.items[0].mos == 4.645
