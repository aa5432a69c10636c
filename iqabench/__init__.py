"""iqabench: a benchmark harness for image quality assessment, built first for thermal LWIR.

The Python API lives in :mod:`iqabench.api`; the command line in :mod:`iqabench.cli`.
"""

__version__ = "0.1.0"
