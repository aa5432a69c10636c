"""The items table: one row per distorted image, whatever the dataset's own layout.

Every loader in :mod:`iqabench.data` produces a :class:`Dataset` whose items carry the distorted
image path, the reference path (if any), the subjective score as published, the same score
oriented so that higher is better (``quality``), the distortion type and level when known, and
the content id (the reference scene), which is what keeps train/test splits content-disjoint.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Item:
    """One distorted image and what is known about it."""

    id: str
    image: Path
    mos: float
    quality: float
    content: str
    ref: Path | None = None
    distortion: str | None = None
    level: int | None = None


@dataclass
class Dataset:
    """A loaded dataset: its card, root folder and items (in a stable order)."""

    name: str
    root: Path
    items: list[Item]
    card: dict[str, Any] = field(default_factory=dict)
    #: Direction of the published scores (``mos``); ``quality`` is always higher-is-better.
    score_higher_is_better: bool = True

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    @property
    def has_references(self) -> bool:
        return any(item.ref is not None for item in self.items)

    @property
    def contents(self) -> list[str]:
        """Content id of each item, in item order."""
        return [item.content for item in self.items]

    @property
    def distortions(self) -> list[str]:
        """Distortion types present, in first-seen order."""
        return list(dict.fromkeys(i.distortion for i in self.items if i.distortion))

    def subset(self, indices: Sequence[int]) -> list[Item]:
        return [self.items[i] for i in indices]

    def to_frame(self):  # noqa: ANN201 - pandas is imported lazily
        """The items as a pandas DataFrame (one row per item)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "id": [i.id for i in self.items],
                "image": [str(i.image) for i in self.items],
                "ref": [str(i.ref) if i.ref else None for i in self.items],
                "mos": [i.mos for i in self.items],
                "quality": [i.quality for i in self.items],
                "distortion": [i.distortion for i in self.items],
                "level": [i.level for i in self.items],
                "content": [i.content for i in self.items],
            }
        )
