"""Images for training and scoring, decoded once and read back without holding them in memory.

:class:`PreparedImages` decodes each image (and its reference) once, prepares it as the model's
:class:`~iqabench.train.inputs.InputSpec` says and writes the result as ``.npy`` files to a
bounded on-disk cache (``$IQABENCH_CACHE/prepared``; ``IQABENCH_PREPARED_CACHE_GB``, default 8,
caps it, the least recently used files going first). Entries are named by the content of the
image files and the preparation, so splits, runs and processes share them, and a training
epoch reads them memory-mapped: memory does not grow with the dataset.

An :class:`ImageSource` is what the datasets read from: :class:`CachedImages` (entries of the
cache) or :class:`ArrayImages` (prepared arrays in memory, for images given as pixels). Both
give the same arrays for the same image, so a score does not depend on the path it took.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .inputs import InputSpec, prepare

if TYPE_CHECKING:
    from ..metric import LabelledImage
    from ..progress import Progress

DEFAULT_CACHE_GB = 8.0


class ImageSource(Protocol):
    """Prepared images, by position: ``(C, H, W)`` arrays on 0..255 and their references."""

    def __len__(self) -> int: ...

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]: ...


@dataclass(frozen=True)
class CachedEntry:
    """Where the prepared image (and reference) of one item lies in the cache."""

    key: str
    image: Path
    ref: Path | None


class CachedImages:
    """Cache entries read back memory-mapped (picklable: DataLoader workers receive paths)."""

    def __init__(self, entries: Sequence[CachedEntry]) -> None:
        self.entries = list(entries)

    def __len__(self) -> int:
        return len(self.entries)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        entry = self.entries[index]
        image = np.load(entry.image, mmap_mode="r")
        ref = np.load(entry.ref, mmap_mode="r") if entry.ref is not None else None
        return image, ref


class ArrayImages:
    """Prepared arrays held in memory (a few images given as pixels, e.g. to ``score``)."""

    def __init__(self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray | None]) -> None:
        if len(images) != len(refs):
            raise ValueError("ArrayImages needs one reference (or None) per image")
        self.images = list(images)
        self.refs = list(refs)

    @classmethod
    def from_pixels(
        cls,
        images: Sequence[np.ndarray],
        refs: Sequence[np.ndarray] | None,
        spec: InputSpec,
    ) -> ArrayImages:
        """Metric inputs (float 0..255) prepared as ``spec`` says."""
        prepared_refs = [prepare(r, spec) for r in refs] if refs is not None else None
        return cls(
            [prepare(image, spec) for image in images],
            prepared_refs if prepared_refs is not None else [None] * len(images),
        )

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        return self.images[index], self.refs[index]


class PreparedImages:
    """The decode-once cache of one input spec and colour convention."""

    def __init__(self, spec: InputSpec, root: Path | None = None) -> None:
        from ..weights import cache_dir

        self.spec = spec
        self.root = Path(root) if root is not None else cache_dir() / "prepared"
        self.max_bytes = int(
            float(os.environ.get("IQABENCH_PREPARED_CACHE_GB", DEFAULT_CACHE_GB)) * 2**30
        )

    def add(
        self,
        items: Sequence[LabelledImage],
        progress: Progress | None = None,
        label: str = "preparing images",
    ) -> tuple[CachedImages, list[int], list[str]]:
        """Prepare ``items`` (those already cached are only touched). Returns the source of the
        readable ones, their positions in ``items``, and the one-line errors of the others."""
        from ..errors import UserError
        from ..progress import SilentProgress

        entries: list[CachedEntry] = []
        kept: list[int] = []
        errors: list[str] = []
        with (progress or SilentProgress()).task(label, total=len(items)) as bar:
            for index, item in enumerate(items):
                try:
                    entries.append(self._entry(item))
                    kept.append(index)
                except UserError as exc:
                    errors.append(str(exc))
                bar.advance(1)
        self._prune({p for e in entries for p in (e.image, e.ref) if p is not None})
        return CachedImages(entries), kept, errors

    def _entry(self, item: LabelledImage) -> CachedEntry:
        from ..imageio import cached_file_sha256, load_for_metric

        key = cached_file_sha256(item.image)[:32]
        if item.ref is not None:
            key += "-" + cached_file_sha256(item.ref)[:32]
        stem = f"{key}-{self.spec.preparation_key()}"
        image_path = self.root / f"{stem}.npy"
        ref_path = self.root / f"{stem}.ref.npy" if item.ref is not None else None
        wanted = [p for p in (image_path, ref_path) if p is not None]
        if all(p.is_file() for p in wanted):
            for path in wanted:
                os.utime(path)
        else:
            colour = self.spec.channels
            image, ref = load_for_metric(item.image, colour, item.ref)
            self.root.mkdir(parents=True, exist_ok=True)
            _save(image_path, prepare(image, self.spec))
            if ref_path is not None and ref is not None:
                _save(ref_path, prepare(ref, self.spec))
        return CachedEntry(key, image_path, ref_path)

    def _prune(self, keep: set[Path]) -> None:
        """Delete the least recently used files beyond the size cap (never those in ``keep``)."""
        files = [(p.stat().st_mtime, p.stat().st_size, p) for p in self.root.glob("*.npy")]
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            if path not in keep:
                path.unlink(missing_ok=True)
                total -= size


def _save(path: Path, array: np.ndarray) -> None:
    """Write atomically (a temporary name, then a rename), so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, array)
    os.replace(tmp, path)
