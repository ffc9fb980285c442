"""Typed errors of emo3d. Each message says what was wrong and what is accepted.

Every error derives from :class:`Emo3DError`; each also derives from the matching built-in
(``ValueError``, ``FileNotFoundError`` ...) so callers that catch the built-in keep working.
"""
from __future__ import annotations


class Emo3DError(Exception):
    """Base class of every error emo3d raises on purpose."""


class InvalidInputError(Emo3DError, ValueError):
    """Bad user input: empty or huge text, NaN weights, wrong shapes, unknown names."""


class ModelFileError(Emo3DError, FileNotFoundError):
    """A model folder or one of its files is missing or corrupt; the message names the file."""


class DataValidationError(Emo3DError, ValueError):
    """A dataset row is malformed; the message names file, row and column."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None):
        where = ", ".join(p for p in (f"file {file}" if file else "",
                                      f"row {row}" if row is not None else "",
                                      f"column {column!r}" if column else "") if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.file, self.row, self.column = file, row, column


class AssetError(Emo3DError, FileNotFoundError):
    """A required asset (face bundle, packaged encoder, CLIP weights) could not be found or verified."""


class ProviderError(Emo3DError, RuntimeError):
    """A requested execution provider (CUDA, TensorRT) is not available."""


class ProtocolError(Emo3DError, ValueError):
    """A malformed network message (control server, OSC, Live Link)."""


class WorkerLostError(Emo3DError, RuntimeError):
    """A parallel worker (local process or Ray task) died and its task ran out of retries."""
