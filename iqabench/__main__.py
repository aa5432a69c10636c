"""``python -m iqabench``: the command line, with the working folder off ``sys.path``.

Python puts the current folder first on ``sys.path`` for ``-m``; a dataset or results folder
is no source of code, so it is removed before anything else is imported (as ``python -P``).
"""

import os
import sys

if not sys.flags.safe_path and sys.path and os.path.abspath(sys.path[0]) == os.getcwd():
    del sys.path[0]

from iqabench.cli import main  # noqa: E402 - after the sys.path fix above

raise SystemExit(main())
