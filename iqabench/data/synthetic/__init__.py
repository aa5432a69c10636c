"""The built-in ``synthetic-lwir`` dataset: thermal-like scenes with the LWIR-IQA distortions.

Deterministic from a seed and generated in seconds, so everything in iqabench runs with no
download: :func:`ensure_synthetic_lwir` builds the default set into the cache on first use;
:func:`build_synthetic_lwir` writes one anywhere, from synthetic scenes or a folder of the
user's own pristine frames. Its ``mos`` column is the ordinal quality ``6 - level``, not a mean
opinion score. Modules: :mod:`.scenes` (scene synthesis), :mod:`.distortions` (the recipe),
:mod:`.sources` (synthetic or user frames), :mod:`.build` (files, manifest, cache).
"""

from .build import (
    GENERATOR_VERSION,
    build_synthetic_lwir,
    default_synthetic_dir,
    ensure_synthetic_lwir,
    made_dataset_name,
)
from .distortions import DISTORTIONS, RECIPE

__all__ = [
    "DISTORTIONS",
    "GENERATOR_VERSION",
    "RECIPE",
    "build_synthetic_lwir",
    "default_synthetic_dir",
    "ensure_synthetic_lwir",
    "made_dataset_name",
]
