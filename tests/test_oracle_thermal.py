"""Fidelity on thermal images: iqabench against the authors' own releases run under Octave.

``../shared/data/oracle-thermal`` holds 90 thermal images (6 TNO frames, 60 synthetic
distortions, 24 real LWIR-IQA/TIIQAD images) with what the original MATLAB releases print for
them under GNU Octave. Where a 7x7 window of an image is flat (``frac_const_7x7 > 0``) NIQE's
and BRISQUE's coefficients are rounding noise there and MATLAB itself differs from Octave;
iqabench follows the reference run's arithmetic (see ``iqabench.features.nss``), and the tests
hold it to the issue's tolerances on those images too. Every image is checked, so the
feature tests take some seconds (OG-IQA and GWH-GLBP round their filters as Octave does).
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from collections import defaultdict
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED, SHARED_WEIGHTS

from iqabench import api, registry
from iqabench.features.nss import flat_window_share
from iqabench.imageio import load_for_metric

ORACLE = SHARED / "data" / "oracle-thermal"
FULL_REFERENCE = {
    "psnr": "psnr",
    "ssim": "ssim",
    "vif": "vif",
    "iwssim": "iw-ssim",
    "fsim": "fsim",
    "gmsd": "gmsd",
}
FEATURES = {"gmlog": "gm-log", "gwhglbp": "gwh-glbp", "ogiqa": "og-iqa"}
#: The slower full-reference metrics are checked on every distortion of two of the six frames
#: (20 pairs); the others on all 60.
SUBSET_FRAMES = ("tno_Farm_Farm_IR", "tno_2_men_in_front_of_house_IR_meting003_g")
SLOW_FULL_REFERENCE = {"vif", "iwssim", "fsim"}

pytestmark = pytest.mark.usefixtures("shared")


@cache
def oracle_values() -> dict[str, dict[tuple[str, str], float]]:
    values: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    with open(ORACLE / "values.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            values[row["metric"]][(row["image"], row["ref"])] = float(row["value"])
    return values


@cache
def oracle_features() -> dict[str, dict[str, np.ndarray]]:
    rows: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    with open(ORACLE / "features.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            rows[row["metric"]][row["image"]][int(row["feature_index"])] = float(row["value"])
    return {
        metric: {image: np.array([v[i] for i in sorted(v)]) for image, v in images.items()}
        for metric, images in rows.items()
    }


def flat_share(image: str) -> float:
    return oracle_values()["frac_const_7x7"][(image, "")]


@cache
def pixels(image: str, colour: str) -> np.ndarray:
    return load_for_metric(ORACLE / "thermal" / image, colour)[0]


@pytest.mark.parametrize("key", sorted(FULL_REFERENCE))
def test_full_reference_metrics_match_the_release(key: str) -> None:
    metric = registry.create(FULL_REFERENCE[key])
    pairs = oracle_values()[key]
    if key in SLOW_FULL_REFERENCE:
        pairs = {k: v for k, v in pairs.items() if Path(k[1]).stem in SUBSET_FRAMES}
        assert len(pairs) == 20
    worst = 0.0
    for (image, ref), expected in pairs.items():
        value = metric.score([pixels(image, metric.colour)], [pixels(ref, metric.colour)])[0]
        worst = max(worst, abs(value - expected) / abs(expected))
    print(f"{key}: worst relative difference {worst:.1e} on {len(pairs)} pairs")
    assert worst <= 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(FEATURES))
def test_feature_vectors_match_the_release(key: str) -> None:
    metric = registry.create(FEATURES[key])
    worst = 0.0
    for image, expected in oracle_features()[key].items():
        got = metric.features([pixels(image, "grey")])[0]
        error = np.abs(got - expected)
        near_zero = np.abs(expected) < 1e-9
        assert np.all(error[near_zero] <= 1e-9), image
        relative = error[~near_zero] / np.abs(expected[~near_zero])
        assert np.all(relative <= 1e-6), (image, relative.max())
        worst = max(worst, relative.max())
    print(f"{key}: worst relative difference {worst:.1e} on {len(oracle_features()[key])} images")


def _no_reference_differences(name: str, key: str, relative: bool) -> dict[bool, list[float]]:
    metric = registry.create(name)
    differences: dict[bool, list[float]] = {False: [], True: []}
    for (image, _), expected in oracle_values()[key].items():
        value = float(metric.score([pixels(image, "grey")])[0])
        error = abs(value - expected) / abs(expected) if relative else abs(value - expected)
        differences[flat_share(image) > 0].append(error)
    without, with_flat = max(differences[False]), max(differences[True])
    print(f"{name}: worst {without:.1e} without flat windows, {with_flat:.1e} with")
    return differences


def test_niqe_matches_the_release() -> None:
    differences = _no_reference_differences("niqe", "niqe", relative=True)
    assert len(differences[False]) == 37 and max(differences[False]) <= 1e-6
    assert len(differences[True]) == 53 and max(differences[True]) <= 0.02


def test_brisque_live_matches_the_release() -> None:
    differences = _no_reference_differences("brisque-live", "brisque", relative=False)
    # the release passes its features through text files with 6 decimals
    assert max(differences[False]) <= 1e-3
    assert max(differences[True]) <= 2.0


def test_flat_window_share_is_the_oracles() -> None:
    for (image, _), share in oracle_values()["frac_const_7x7"].items():
        assert flat_window_share(pixels(image, "grey")) == pytest.approx(share, abs=1e-15), image


def test_a_run_records_the_flat_share_and_warns(tmp_path: Path) -> None:
    images = ["synthetic/tno_Farm_Farm_IR__jpeg_2.png", "pristine/tno_Farm_Farm_IR.png"]
    images.append("synthetic/tno_Farm_Farm_IR__awgn_1.png")  # no flat window
    root = tmp_path / "data"
    root.mkdir()
    lines = ["image,mos"]
    for number, image in enumerate(images):
        shutil.copy(ORACLE / "thermal" / image, root / f"{number}.png")
        lines.append(f"{number}.png,{number + 1}")
    (root / "scores.csv").write_text("\n".join(lines) + "\n")
    result = api.run(
        ["niqe", "brisque-live"], "csv", data_root=root, out=tmp_path / "out", splits=0
    )
    for name in ("niqe", "brisque-live"):
        entry = result.summary["metrics"][name]
        recorded = entry["diagnostics"]["flat-window-share"]
        shares = sorted(recorded["per_item"].values())
        assert shares == sorted(flat_share(image) for image in images)
        assert recorded["images_over_threshold"] == 2
        assert any("flat 7x7 windows" in note for note in entry["notes"])
        assert any(w.startswith(f"{name}:") and "flat 7x7" in w for w in result.summary["warnings"])


def test_packaged_model_files_are_the_published_ones() -> None:
    from iqabench.weights import PACKAGED_DIR

    listed = (PACKAGED_DIR / "SHA256SUMS").read_text().split("\n")
    sums = dict(reversed(line.split()) for line in listed if line.strip())
    assert set(sums) == {
        "niqe/niqe_pristine_model.npz",
        "brisque/allmodel",
        "brisque/allrange",
    }
    for relpath, digest in sums.items():
        content = (PACKAGED_DIR / relpath).read_bytes()
        assert hashlib.sha256(content).hexdigest() == digest, relpath
        assert content == (SHARED_WEIGHTS / relpath).read_bytes(), relpath
    assert "COPYRIGHT NOTICE" in (PACKAGED_DIR / "NOTICE.md").read_text()
