"""Built-in metrics, one module per metric (or tight family), each citing its paper.

They are registered through the ``iqabench.metrics`` entry-point group in ``pyproject.toml``,
exactly as a third-party plugin would be; see :mod:`iqabench.registry`.
"""
