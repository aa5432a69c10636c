"""Errors a user can cause.

Every exception here carries one line that names the file, row or name at fault. The CLI prints
that line and exits with code 2; anything else escaping is an internal error (exit code 1).
"""

from __future__ import annotations

import errno


class UserError(Exception):
    """Base class: bad input, a missing file or an unknown name (CLI exit code 2)."""


class UnknownNameError(UserError):
    """An unknown metric or dataset name; the message suggests the closest known one."""


class DatasetError(UserError):
    """A dataset root or score table that is missing, empty or malformed."""


class ImageReadError(UserError):
    """An image that cannot be read (missing, unreadable or truncated)."""


class SizeMismatchError(UserError):
    """A distorted image whose size differs from its reference."""


class MetricUnavailableError(UserError):
    """A problem with a whole metric, not one image: a run skips the metric and says why."""


class WeightsNotFoundError(MetricUnavailableError):
    """A model file that is not in the weights directory or cache (and may not be downloaded)."""


class NotFittedError(MetricUnavailableError):
    """A trainable metric asked to score before it was fitted or given a model."""


class MetricParameterError(MetricUnavailableError):
    """An unknown or invalid metric parameter."""


class StorageError(UserError):
    """A file or folder that cannot be written: a full disk, a read-only or forbidden folder."""


class RunFolderBusyError(UserError):
    """A run folder that another iqabench run is writing to right now."""


#: ``errno`` values that mean "this place cannot be written", not "iqabench is broken".
STORAGE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EDQUOT", "EFBIG", "EROFS", "EACCES", "EPERM")
    if hasattr(errno, name)
)


def storage_error(path: object, exc: OSError) -> StorageError:
    """The one-line :class:`StorageError` for ``exc`` raised while writing ``path``."""
    reason = exc.strerror or str(exc)
    return StorageError(f"cannot write {path}: {reason}")


def one_line(text: object) -> str:
    """``text`` on one line: its lines joined by " | " (libraries such as torch raise
    multi-line messages; every message iqabench prints or stores is one line)."""
    return " | ".join(line.strip() for line in str(text).splitlines() if line.strip())
