"""Datasets: loaders for LWIR-IQA, TIIQAD, any CSV-described folder and the synthetic set.

``load_dataset(name, root=None, csv=None)`` returns a :class:`~iqabench.data.items.Dataset`.
"""

from .items import Dataset, Item

__all__ = ["Dataset", "Item", "load_dataset"]


def load_dataset(name: str, root=None, csv=None, **options) -> Dataset:  # noqa: ANN001
    """Load dataset ``name`` (see ``iqabench list datasets``) from ``root``."""
    from .loaders import load

    return load(name, root, csv, **options)
