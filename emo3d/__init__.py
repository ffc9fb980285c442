"""emo3d: emotion descriptions -> 52 facial blendshapes -> a 3D face, live streams, and the Emo3D metric.

The public API is small; see the README. Heavy parts import lazily.
"""
__version__ = "0.1.0"

from . import schema  # noqa: E402,F401
from .errors import (  # noqa: E402,F401
    AssetError, DataValidationError, Emo3DError, InvalidInputError, ModelFileError, ProtocolError,
    ProviderError,
)
