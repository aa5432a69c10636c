"""iqabench: a benchmark harness for image quality assessment, built first for thermal LWIR.

``iqabench.create_metric(name, **params)`` gives a metric as a callable object
(:mod:`iqabench.scorer`); the rest of the Python API lives in :mod:`iqabench.api`, the command
line in :mod:`iqabench.cli`.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "create_metric"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `import iqabench` (and `iqabench --help`) stay fast.
    if name == "create_metric":
        from .scorer import create_metric

        return create_metric
    raise AttributeError(f"module 'iqabench' has no attribute {name!r}")
