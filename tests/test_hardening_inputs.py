"""Hardening, inputs: a hostile or malformed file costs one item (or one clear line), never the
run, never gigabytes of memory, and never a silently wrong number."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_dataset
from PIL import Image

from iqabench import api
from iqabench.data import load_dataset
from iqabench.errors import DatasetError, ImageReadError, UserError
from iqabench.imageio import read_image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_big_png(path: Path, width: int, height: int) -> Path:
    """A valid all-black grey PNG of ``width`` x ``height``, compressed row by row (a few
    hundred kilobytes on disk, ``width * height`` bytes once decoded)."""
    squeeze = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    data = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data)
    path.write_bytes(png + _chunk(b"IEND", b""))
    return path


def forge_bmp_size(path: Path, width: int, height: int) -> Path:
    """Overwrite the width and height of a BMP's header (the pixel data stays small)."""
    data = bytearray(path.read_bytes())
    data[18:26] = struct.pack("<ii", width, height)
    path.write_bytes(bytes(data))
    return path


# -- (2) decompression bombs and forged headers ---------------------------------------------------
def test_a_png_declaring_100000_squared_pixels_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    data = bytearray(write_big_png(path, 16, 16).read_bytes())
    data[16:24] = struct.pack(">II", 100_000, 100_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"bomb\.png.*too large.*IQABENCH_MAX_PIXELS"):
        read_image(path)


def test_a_bmp_with_forged_width_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "forged.bmp"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)
    forge_bmp_size(path, 60_000, 60_000)  # above Pillow's own ceiling
    with pytest.raises(ImageReadError, match=r"forged\.bmp.*too large"):
        read_image(path)
    forge_bmp_size(path, 7_000, 7_000)  # below Pillow's, above ours
    with pytest.raises(ImageReadError, match=r"forged\.bmp declares 7000x7000"):
        read_image(path)
    forge_bmp_size(path, 3_000, 3_000)  # allowed, but the pixel data is not there
    with pytest.raises(ImageReadError, match=r"cannot decode image .*forged\.bmp"):
        read_image(path)


def test_the_pixel_limit_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "small.png"
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(path)
    monkeypatch.setenv("IQABENCH_MAX_PIXELS", "1000")
    with pytest.raises(ImageReadError, match="50x40.*above the limit of 1000"):
        read_image(path)
    monkeypatch.setenv("IQABENCH_MAX_PIXELS", "2000")
    assert read_image(path).size == (40, 50)
    monkeypatch.setenv("IQABENCH_MAX_PIXELS", "many")
    with pytest.raises(UserError, match="IQABENCH_MAX_PIXELS"):
        read_image(path)


def test_a_10000_squared_png_is_refused_without_allocating_it(tmp_path: Path) -> None:
    """97 KB on disk, 100 megapixels decoded: refused in a process that stays small. The peak is
    the process's own (VmHWM): getrusage's ru_maxrss survives exec and would report the
    pytest process's size at the fork."""
    path = write_big_png(tmp_path / "huge.png", 10_000, 10_000)
    assert path.stat().st_size < 500_000
    code = (
        "import re, sys\n"
        "from iqabench.cli import main\n"
        "code = main(['score', '--metrics', 'psnr', sys.argv[1], '--ref', sys.argv[1]])\n"
        "status = open('/proc/self/status').read()\n"
        "print('peak', re.search(r'VmHWM:\\s*(\\d+)', status).group(1))\n"
        "raise SystemExit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr
    assert "huge.png" in done.stderr and "10000x10000" in done.stderr
    peak_kib = int(done.stdout.split("peak")[-1])
    assert peak_kib < 400 * 1024, f"peak memory {peak_kib / 1024:.0f} MiB"


def test_one_bomb_in_a_dataset_costs_one_item(tmp_path: Path) -> None:
    root = tiny_dataset(tmp_path / "data")
    write_big_png(root / "s0_l1.png", 6_000, 6_000)  # replaces one distorted image
    result = api.run(["psnr"], "csv", data_root=root, out=tmp_path / "out", splits=0, bootstrap=0)
    entry = result.summary["metrics"]["psnr"]
    assert entry["status"] == "ok" and entry["n_scored"] == 8 and entry["n_failed"] == 1
    (failure,) = result.input_failures
    assert "s0_l1.png declares 6000x6000 pixels, above the limit" in failure


# -- (7) silent wrong input --------------------------------------------------------------------
def test_nan_pixels_in_a_float_tiff_are_an_input_error(tmp_path: Path) -> None:
    pixels = np.full((8, 8), 100.0, np.float32)
    pixels[2, 3] = np.nan
    Image.fromarray(pixels, mode="F").save(tmp_path / "nan.tif")
    with pytest.raises(ImageReadError, match=r"nan\.tif.*NaN"):
        read_image(tmp_path / "nan.tif")


def test_a_fractional_level_is_refused_with_its_line(tmp_path: Path) -> None:
    root = tiny_dataset(tmp_path / "data")
    table = root / "scores.csv"
    lines = table.read_text().splitlines()
    lines[3] = lines[3].replace("AWGN,3", "AWGN,2.7")
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"line 4: level '2\.7' is not a whole number"):
        load_dataset("csv", root)
    table.write_text("\n".join(lines).replace("AWGN,2.7", "AWGN,3.0") + "\n")
    assert {i.level for i in load_dataset("csv", root)} == {1, 2, 3}


def test_quoted_names_keep_their_newlines_and_rows_their_line_numbers(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a\nb.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "c.png")
    (tmp_path / "scores.csv").write_text('image,mos\n"a\nb.png",3\nc.png,4\n')
    dataset = load_dataset("csv", tmp_path)
    assert [i.image.name for i in dataset] == ["a\nb.png", "c.png"]
    assert all(i.image.is_file() for i in dataset)
    (tmp_path / "scores.csv").write_text('image,mos\n"a\nb.png",3\nc.png,high\n')
    with pytest.raises(DatasetError, match="line 4: mos 'high'"):
        load_dataset("csv", tmp_path)


def test_no_reference_metrics_ignore_missing_or_mismatched_references(tmp_path: Path) -> None:
    root = tiny_dataset(tmp_path / "data")
    (root / "ref0.png").unlink()  # scene 0 loses its reference
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "ref1.png")  # scene 1: wrong size
    from conftest import REPO, registered

    sys.path.insert(0, str(REPO / "tests" / "plugin_example"))
    try:
        from iqabench_example_plugin import MeanGradientSharpness
    finally:
        sys.path.pop(0)
    with registered(MeanGradientSharpness):
        names = ["example-sharpness", "psnr"]
        options = {"splits": 0, "bootstrap": 0}
        result = api.run(names, "csv", data_root=root, out=tmp_path / "out", **options)
    sharpness, psnr = (result.summary["metrics"][n] for n in ("example-sharpness", "psnr"))
    assert sharpness["n_scored"] == 9 and sharpness["n_failed"] == 0
    assert psnr["n_scored"] == 3 and psnr["n_failed"] == 6


# -- (4) table paths never escape the data root --------------------------------------------------
@pytest.fixture
def lwir(tmp_path: Path) -> Path:
    """An LWIR_IQA folder (authors' layout), with an image lying outside it."""
    root = tmp_path / "LWIR"
    for folder in ("original", "white-noise"):
        (root / folder).mkdir(parents=True)
    grey = np.zeros((8, 8), np.uint8)
    Image.fromarray(grey).save(root / "original" / "IMG_01.bmp")
    for level in (1, 2, 3):
        Image.fromarray(grey + level).save(root / "white-noise" / f"IMG_01_AWGN ({level}).bmp")
    Image.fromarray(grey).save(tmp_path / "outside.bmp")
    return root


def _lwir_table(root: Path, names: list[str]) -> None:
    rows = "".join(f"{name};{3 + i}\n" for i, name in enumerate(names))
    (root / "scores.csv").write_text("Distorted_image;MOS\n" + rows)


GOOD = ["IMG_01_AWGN (1).bmp", "IMG_01_AWGN (2).bmp"]


def test_lwir_table_paths_escaping_the_root_are_refused(lwir: Path) -> None:
    _lwir_table(lwir, GOOD)
    assert len(load_dataset("LWIR_IQA", lwir)) == 2
    for bad in ("../outside.bmp", str(lwir.parent / "outside.bmp")):
        _lwir_table(lwir, [*GOOD, bad])
        with pytest.raises(DatasetError, match=r"scores\.csv line 4: .*(escapes|absolute)"):
            load_dataset("LWIR_IQA", lwir)


def test_lwir_symlinks_leading_outside_the_root_are_refused(lwir: Path) -> None:
    os.symlink(lwir.parent / "outside.bmp", lwir / "white-noise" / "IMG_01_AWGN (4).bmp")
    _lwir_table(lwir, [*GOOD, "IMG_01_AWGN (4).bmp"])
    with pytest.raises(DatasetError, match=r"line 4: .*IMG_01_AWGN \(4\)\.bmp.*escapes"):
        load_dataset("LWIR_IQA", lwir)
    _lwir_table(lwir, GOOD)
    reference = lwir / "original" / "IMG_01.bmp"
    reference.unlink()
    os.symlink(lwir.parent / "outside.bmp", reference)
    with pytest.raises(DatasetError, match=r"original/IMG_01\.bmp.*escapes"):
        load_dataset("LWIR_IQA", lwir)


def test_lwir_spreadsheet_paths_escaping_the_root_are_refused(lwir: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "MOS"
    sheet.append(["Image name", "MOS"])
    for name in [*GOOD, "../outside.bmp"]:
        sheet.append([name, 3.5])
    book.save(lwir / "scores.xlsx")
    with pytest.raises(DatasetError, match=r"scores\.xlsx line MOS!4: .*escapes"):
        load_dataset("LWIR_IQA", lwir)


def test_every_loader_uses_the_one_path_check() -> None:
    from conftest import REPO

    loaders = REPO / "iqabench" / "data"
    for module in ("csv_folder.py", "lwir_iqa.py", "tiiqad.py"):
        text = (loaders / module).read_text()
        assert "from .paths import" in text and ".resolve()" not in text, module
