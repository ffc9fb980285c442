"""emo3d datasets: read the official Emo3D release exactly, and build Emo3D-format data offline.

Public API::

    read_release(root, *, skip_bad=False, report_path=None, check_images=True) -> Release
    text_pairs(samples, *, mirror=False, target="scores"|"prior") -> TextPairs
    image_pairs(samples, root, *, mirror=False) -> ImagePairs
    mirror_text(text), mirror_image(rgb)
    build(BuildOptions(out, samples=..., seed=..., images=...)) -> BuildResult
    facs.prior(dist8, intensity=1.0, *, rng=None, text=None)
    read_primitives(root) -> list[Primitive]     # data/primitive_emotions.csv of an offline build
    vocabulary.emotion_words(emotion) -> EmotionWords   # the descriptions' word lists (synonyms, clauses)
    text_statistics([(text, emotion), ...]) -> TextStats  # per-emotion Table-3 statistics (PAPER_TABLE3)

CLI: ``emo3d data build|check|fetch|card|stats`` (``dataset.cli``).
"""
from . import facs, vocabulary
from .augment import ImagePairs, TextPairs, image_pairs, mirror_image, mirror_text, text_pairs
from .builder import BuildOptions, BuildResult, build
from .primitives import Primitive, read_primitives
from .reader import Release, Sample, SkippedRow, read_release, read_table, write_table
from .stats import PAPER_TABLE3, TextStats, text_statistics

__all__ = ["facs", "read_release", "Release", "Sample", "SkippedRow", "read_table", "write_table",
           "text_pairs", "image_pairs", "TextPairs", "ImagePairs", "mirror_text", "mirror_image",
           "build", "BuildOptions", "BuildResult", "Primitive", "read_primitives", "vocabulary",
           "text_statistics", "TextStats", "PAPER_TABLE3"]
