"""Where model files come from: a weights directory, the cache, or (opt-in) a checked download.

Search order for a file named by a relative path such as ``niqe/niqe_pristine_model.npz``:

1. every directory in ``IQABENCH_WEIGHTS`` (``os.pathsep``-separated), at the relative path and
   then by the bare file name;
2. the iqabench cache (``$IQABENCH_CACHE/weights``, default ``~/.cache/iqabench/weights``);
3. for torchvision checkpoints, the torch hub cache (``$TORCH_HOME/hub/checkpoints``);
4. the files shipped inside the package (:data:`PACKAGED_DIR`: the NIQE pristine model and the
   BRISQUE LIVE SVR with its ranges, with their licence notice and checksums), so that those
   metrics run on a fresh install;
5. for files shipped inside an installed Python package (``WeightsFile.package``, e.g. the
   ``iqabench[pretrained]`` extra), that package's folder; for files of a Hugging Face hub
   repository (``WeightsFile.hub_repo``, as timm stores them), the local hub cache
   (``$HF_HUB_CACHE``, default ``$HF_HOME/hub`` or ``~/.cache/huggingface/hub``);
6. only when ``IQABENCH_ALLOW_DOWNLOAD=1`` and a URL with its SHA-256 is known: a download into
   the cache, verified against the checksum.

Nothing is ever downloaded otherwise; a missing file raises
:class:`~iqabench.errors.WeightsNotFoundError` saying where it looked and how to provide it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import WeightsNotFoundError

#: The weights files of a Hugging Face hub snapshot, preferred first.
HUB_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class WeightsFile:
    """A model file a metric needs: its relative name and, where known, URL and SHA-256."""

    relpath: str
    description: str
    url: str | None = None
    sha256: str | None = None
    #: An importable package that ships the file; ``relpath`` is then its path inside
    #: site-packages, starting with the package's folder.
    package: str | None = None
    #: A Hugging Face hub repository (``timm/resnet50.a1_in1k``) whose local cache may hold the
    #: weights, as ``model.safetensors`` or ``pytorch_model.bin`` in one of its snapshots
    #: (``relpath`` stays the name under which a weights directory holds them).
    hub_repo: str | None = None


def cache_dir() -> Path:
    """The iqabench cache root (``IQABENCH_CACHE`` or ``~/.cache/iqabench``)."""
    return Path(os.environ.get("IQABENCH_CACHE", Path.home() / ".cache" / "iqabench"))


#: Model files shipped inside the package, searched after the weights directories and caches
#: (a copy there overrides them).
PACKAGED_DIR = Path(__file__).resolve().parent / "model_files"


def search_dirs() -> list[Path]:
    """Directories searched for model files, in order."""
    dirs = [Path(p) for p in os.environ.get("IQABENCH_WEIGHTS", "").split(os.pathsep) if p]
    dirs.append(cache_dir() / "weights")
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    dirs.append(torch_home / "hub" / "checkpoints")
    dirs.append(PACKAGED_DIR)
    return dirs


def resolve(spec: WeightsFile) -> Path:
    """Return the local path of ``spec``'s file or raise WeightsNotFoundError."""
    name = Path(spec.relpath).name
    for root in search_dirs():
        for candidate in (root / spec.relpath, root / name):
            if candidate.is_file():
                return candidate
    for candidate in _installed_candidates(spec):
        if candidate.is_file():
            return candidate
    if spec.url and spec.sha256 and os.environ.get("IQABENCH_ALLOW_DOWNLOAD") == "1":
        return _download(spec)
    looked = ", ".join(str(d) for d in search_dirs())
    raise WeightsNotFoundError(
        f"{spec.description} not found: put {spec.relpath} in a directory named by "
        f"IQABENCH_WEIGHTS (looked in {looked})"
    )


def _installed_candidates(spec: WeightsFile) -> list[Path]:
    """Where an installed package or the Hugging Face hub cache would hold ``spec``'s file
    (nothing is imported: the package is located, not loaded)."""
    import importlib.util

    candidates: list[Path] = []
    if spec.package:
        try:
            found = importlib.util.find_spec(spec.package)
        except (ImportError, ValueError):
            found = None
        for location in (found.submodule_search_locations or []) if found else []:
            candidates.append(Path(location).parent / spec.relpath)
    if spec.hub_repo:
        home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
        hub = Path(os.environ.get("HF_HUB_CACHE", home / "hub"))
        snapshots = hub / f"models--{spec.hub_repo.replace('/', '--')}" / "snapshots"
        for name in HUB_FILES:
            candidates.extend(sorted(snapshots.glob(f"*/{name}")))
    return candidates


def _download(spec: WeightsFile) -> Path:
    import hashlib
    import tempfile
    import urllib.request

    target = cache_dir() / "weights" / spec.relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        with urllib.request.urlopen(spec.url, timeout=60) as response:  # noqa: S310
            while block := response.read(1 << 20):
                digest.update(block)
                tmp.write(block)
    if digest.hexdigest() != spec.sha256:
        Path(tmp.name).unlink(missing_ok=True)
        raise WeightsNotFoundError(f"checksum mismatch downloading {spec.url}; file discarded")
    Path(tmp.name).replace(target)
    return target
