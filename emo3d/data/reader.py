"""Read the official Emo3D release (and offline builds in its layout) exactly.

Layout: ``ROOT/data/emo3d_data.parquet`` (all samples), ``ROOT/data/{train,val,test}_data.csv`` (the
splits), image folders under ``ROOT`` (``img_*`` cells are paths relative to ``ROOT``) and
``ROOT/data/primitive_emotions.csv``. Columns: ``sample_id``, ``prompt_type``, ``text_1..3``, the 8
emotions, ``img_1..4``, ``blenshape_score_1..4`` (sic, 52 MediaPipe-order values as a numpy-style
string) and, in offline builds, ``prior`` (52 FACS-prior weights) and ``intensity``.

Rows are keyed on (``prompt_type``, ``sample_id``): the official release restarts ``sample_id`` for each
prompt type. A key may appear once per file and in one split only; every split row must match its row in
the parquet. ``img_*`` paths must stay inside the release folder. A row whose 8 emotions are all zero is
read (the official code tolerates it), counted in ``Release.zero_emotion_rows`` and warned about.
Unreadable files (a truncated or empty parquet, a CSV that is not UTF-8 or has a field over
``MAX_CELL`` characters) are ``DataValidationError`` naming the file (and the row, where rows can still be
told apart, so ``skip_bad`` skips just them).
"""
from __future__ import annotations

import csv
import io
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import DataValidationError, InvalidInputError
from emo3d.io import atomic_write_text, cache_dir
from emo3d.schema import EMOTIONS, N_EMOTIONS

from .validate import format_float, format_vector, is_empty, parse_emotion, parse_int, parse_vector

__all__ = ["Sample", "Release", "SkippedRow", "read_release", "read_table", "write_table", "columns",
           "resolve_image", "ZeroEmotionWarning", "MAX_CELL",
           "N_TEXTS", "N_IMAGES", "SPLITS", "PARQUET", "split_csv"]

N_TEXTS = 3
N_IMAGES = 4
SPLITS = ("train", "val", "test")
PARQUET = "emo3d_data.parquet"
TEXT_COLS = tuple(f"text_{i}" for i in range(1, N_TEXTS + 1))
IMG_COLS = tuple(f"img_{i}" for i in range(1, N_IMAGES + 1))
BS_COLS = tuple(f"blenshape_score_{i}" for i in range(1, N_IMAGES + 1))
REQUIRED = ("sample_id", "prompt_type") + TEXT_COLS + EMOTIONS + IMG_COLS + BS_COLS
MAX_CELL = 64 * 1024            # characters in one CSV cell (a longer one is a torn quote or garbage)
_CSV_LIMIT = 16 * 1024 * 1024   # what the csv module may read in one field before we judge it


class ZeroEmotionWarning(UserWarning):
    """Rows whose 8 emotion values are all zero were read (the official code tolerates them)."""


def split_csv(split: str) -> str:
    return f"{split}_data.csv"


def columns(*, extras: bool = True) -> Tuple[str, ...]:
    """Column order of the release (``extras``: plus the offline ``prior`` and ``intensity``)."""
    return REQUIRED + (("prior", "intensity") if extras else ())


@dataclass
class Sample:
    """One row: three texts, an 8-emotion vector (all zero in a few official rows), four images with their
    52 MediaPipe scores. Its key is (``prompt_type``, ``sample_id``)."""
    sample_id: int
    prompt_type: str
    texts: Tuple[str, ...]
    emotions: np.ndarray                       # [8] schema.EMOTIONS order
    images: Tuple[Optional[str], ...]          # 4 relative paths (None = empty cell)
    blendshapes: Tuple[Optional[np.ndarray], ...]  # 4 x [52] MediaPipe order, same number as the image
    prior: Optional[np.ndarray] = None         # [52] FACS prior (offline builds)
    intensity: Optional[float] = None          # offline builds

    def __post_init__(self):
        self.emotions = np.asarray(self.emotions, dtype=np.float32).reshape(-1)
        if self.emotions.shape != (N_EMOTIONS,):
            raise InvalidInputError(f"Sample.emotions needs {N_EMOTIONS} values, got {self.emotions.shape}")
        self.texts = tuple(self.texts)
        self.images = tuple(self.images) + (None,) * (N_IMAGES - len(self.images))
        self.blendshapes = tuple(self.blendshapes) + (None,) * (N_IMAGES - len(self.blendshapes))
        if len(self.images) != N_IMAGES or len(self.blendshapes) != N_IMAGES:
            raise InvalidInputError(f"Sample has at most {N_IMAGES} images and blendshape vectors")

    @property
    def key(self) -> Tuple[str, int]:
        """(prompt_type, sample_id): the official release restarts sample_id per prompt type."""
        return (self.prompt_type, int(self.sample_id))

    @property
    def dominant(self) -> str:
        """The emotion with the highest share (Figure 9's class)."""
        return EMOTIONS[int(np.argmax(self.emotions))]


@dataclass(frozen=True)
class SkippedRow:
    file: str
    row: int
    sample_id: str
    column: str
    error: str


@dataclass
class Release:
    """A loaded release. ``samples``: all rows (the parquet, else the split CSVs in order)."""
    root: Path
    samples: List[Sample]
    splits: Dict[str, List[Sample]] = field(default_factory=dict)
    skipped: List[SkippedRow] = field(default_factory=list)
    report_path: Optional[Path] = None
    zero_emotion_rows: int = 0          # rows read whose emotions are all zero (warned, not refused)

    def split(self, name: str) -> List[Sample]:
        """The official split ``train``, ``val`` or ``test`` (from ``data/<name>_data.csv``)."""
        if name not in SPLITS:
            raise InvalidInputError(f"unknown split {name!r} (accepted: {', '.join(SPLITS)})")
        if name not in self.splits:
            raise InvalidInputError(f"this release has no {split_csv(name)} under {self.root / 'data'}")
        return self.splits[name]

    def __len__(self) -> int:
        return len(self.samples)


def _data_dir(root: Path) -> Tuple[Path, Path]:
    root = Path(root).expanduser()
    if (root / "data").is_dir():
        return root, root / "data"
    if root.name == "data" and root.is_dir():
        return root.parent, root
    raise DataValidationError(
        f"no Emo3D release at {root}: expected {root / 'data' / PARQUET} or {root / 'data' / split_csv('train')} "
        "(pass the folder that holds data/, or use --source hf to download llm-lab/Emo3D)", file=str(root))


def _read_cells(path: Path) -> Tuple[List[str], List[dict]]:
    """Rows of a CSV or parquet file as {column: raw cell} dicts (CSV cells stay exact strings). A file that
    cannot be read at all is a ``DataValidationError`` naming it; CSV bytes that are not UTF-8 come back as
    lone surrogates (``surrogateescape``) so that only their rows are refused."""
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq
        try:
            table = pq.read_table(path)
            return list(table.column_names), table.to_pylist()
        except (pa.ArrowException, OSError, ValueError, TypeError) as e:
            raise DataValidationError(f"not a readable parquet file ({type(e).__name__}: {str(e)[:200]}); it "
                                      "may be truncated or empty: fetch it again", file=str(path)) from None
    try:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
    except OSError as e:
        raise DataValidationError(f"cannot read the file ({e})", file=str(path)) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    old = csv.field_size_limit()
    csv.field_size_limit(_CSV_LIMIT)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as e:
        raise DataValidationError(f"CSV cannot be parsed near line {reader.line_num} ({e}); a quote is probably "
                                  "not closed", file=str(path), row=max(reader.line_num - 1, 0)) from None
    finally:
        csv.field_size_limit(old)
    return list(reader.fieldnames or []), rows


def _check_cells(cells: dict, *, file: str, row: int) -> None:
    """Cells that are not UTF-8 or longer than ``MAX_CELL`` characters."""
    for col, v in cells.items():
        if not isinstance(v, str):
            continue
        if len(v) > MAX_CELL:
            raise DataValidationError(f"cell has {len(v)} characters, more than {MAX_CELL} (a quote that is never "
                                      "closed, or not a release file)", file=file, row=row, column=col)
        try:
            v.encode("utf-8")
        except UnicodeEncodeError as e:
            bad = v[e.start].encode("utf-8", "surrogateescape")
            raise DataValidationError(f"cell is not valid UTF-8 (byte 0x{bad.hex()} at character {e.start}); "
                                      "save the file as UTF-8", file=file, row=row, column=col) from None


def _image_path(root: Path, img: str, *, file: str, row: int, column: str) -> str:
    """An ``img_*`` cell, refused when it is absolute or leaves the release folder."""
    if any(ord(ch) < 32 for ch in img):
        raise DataValidationError(f"image path {img[:200]!r} contains a control character (accepted: a relative "
                                  "path inside the release folder)", file=file, row=row, column=column)
    rel = Path(img)
    inside = not rel.is_absolute() and not img.startswith(("/", "\\")) and ".." not in rel.parts \
        and not (len(img) > 1 and img[1] == ":")
    if inside:
        for sub in ("", "data"):  # no escape through symlinks either
            base = (Path(root) / sub).resolve()
            inside = inside and base in (base / img).resolve().parents
    if not inside:
        raise DataValidationError(f"image path {img[:200]!r} points outside the release folder (accepted: a "
                                  "relative path inside it, such as prompt1_images_0_1000/0_0.jpeg)",
                                  file=file, row=row, column=column)
    return img


def resolve_image(root, rel: str) -> Path:
    """Where an ``img_*`` cell's file is: ``ROOT/rel``, else ``ROOT/data/rel`` (the official release
    ships its image folders as zips inside ``data/``). Returns the first candidate when neither exists."""
    root = Path(root)
    first = root / rel
    if first.is_file():
        return first
    second = root / "data" / rel
    return second if second.is_file() else first


def _missing_image_hint(root: Path, rel: str) -> str:
    folder = Path(rel).parts[0] if Path(rel).parts else rel
    for z in (root / "data" / f"{folder}.zip", root / f"{folder}.zip"):
        if z.is_file():
            return (f"; its folder is still zipped: unzip {z} into {z.parent} (emo3d data fetch --source hf "
                    "extracts the archives), or pass --no-check-images to read texts and scores only")
    return "; pass --no-check-images to read texts and scores only"


def _parse_row(cells: dict, *, file: str, row: int, root: Path, check_images: bool) -> Sample:
    sid = parse_int(cells.get("sample_id"), file=file, row=row, column="sample_id")
    texts = tuple(str(cells[c]) for c in TEXT_COLS if not is_empty(cells.get(c)))
    if not texts:
        raise DataValidationError("all text cells are empty (accepted: at least one text)", file=file, row=row,
                                  column=TEXT_COLS[0])
    emo = np.array([parse_emotion(cells.get(e), file=file, row=row, column=e) for e in EMOTIONS],
                   dtype=np.float32)
    images: List[Optional[str]] = []
    shapes: List[Optional[np.ndarray]] = []
    for ic, bc in zip(IMG_COLS, BS_COLS):
        img = None if is_empty(cells.get(ic)) else str(cells[ic]).strip()
        if img is not None:
            img = _image_path(root, img, file=file, row=row, column=ic)
        if img is not None and check_images and not resolve_image(root, img).is_file():
            raise DataValidationError(f"image file {root / img} does not exist{_missing_image_hint(root, img)}",
                                      file=file, row=row, column=ic)
        images.append(img)
        shapes.append(parse_vector(cells.get(bc), file=file, row=row, column=bc))
    prior = parse_vector(cells.get("prior"), file=file, row=row, column="prior") if "prior" in cells else None
    intensity = None
    if "intensity" in cells and not is_empty(cells.get("intensity")):
        intensity = parse_emotion(cells["intensity"], file=file, row=row, column="intensity")
    pt = cells.get("prompt_type")
    return Sample(sid, "" if is_empty(pt) else str(pt), texts, emo, tuple(images), tuple(shapes), prior, intensity)


def read_table(path, *, root=None, skip_bad: bool = False, skipped: Optional[list] = None,
               check_images: bool = True) -> List[Sample]:
    """Parse one release file (CSV or parquet) into samples; see ``read_release``."""
    path = Path(path)
    root = Path(root) if root is not None else path.parent.parent
    names, rows = _read_cells(path)
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise DataValidationError(f"missing columns {missing} (the release has {list(REQUIRED)})",
                                  file=str(path), column=missing[0])
    out: List[Sample] = []
    seen: Dict[Tuple[str, int], int] = {}
    for i, cells in enumerate(rows, start=1):
        try:
            if path.suffix != ".parquet" and (None in cells or any(v is None for v in cells.values())):
                n = len(names) + len(cells.get(None) or ()) - sum(v is None for v in cells.values())
                raise DataValidationError(f"row has {n} fields, the header has {len(names)} (a torn or "
                                          "mis-quoted line)", file=str(path), row=i,
                                          column=next((c for c, v in cells.items() if v is None and c), names[-1]))
            _check_cells(cells, file=str(path), row=i)
            s = _parse_row(cells, file=str(path), row=i, root=root, check_images=check_images)
            if s.key in seen:
                raise DataValidationError(f"duplicate (prompt_type, sample_id) = {s.key} (first at row "
                                          f"{seen[s.key]})", file=str(path), row=i, column="sample_id")
            seen[s.key] = i
            out.append(s)
        except DataValidationError as exc:
            if not skip_bad:
                raise
            if skipped is not None:
                skipped.append(SkippedRow(str(path), i, _printable(cells.get("sample_id", "")), exc.column or "",
                                          _printable(str(exc))))
    return out


def _printable(v) -> str:
    return str(v).encode("utf-8", "backslashreplace").decode("utf-8")[:500]


def _same(a: Sample, b: Sample) -> Optional[str]:
    """The first column where two rows of the same key disagree, else None."""
    if tuple(a.texts) != tuple(b.texts):
        return TEXT_COLS[0]
    if not np.allclose(a.emotions, b.emotions, atol=1e-6):
        return EMOTIONS[int(np.argmax(np.abs(a.emotions - b.emotions)))]
    for ic, bc, ia, ib, va, vb in zip(IMG_COLS, BS_COLS, a.images, b.images, a.blendshapes, b.blendshapes):
        if ia != ib:
            return ic
        if (va is None) != (vb is None) or va is not None and not np.allclose(va, vb, atol=1e-6):
            return bc
    return None


def _check_splits(splits: Dict[str, List[Sample]], parquet: Optional[List[Sample]], parquet_path: Path,
                  data: Path, *, skip_bad: bool, skipped: List[SkippedRow]) -> Dict[str, List[Sample]]:
    """Each key in one split only; each split row equal to its parquet row. Offending rows raise, or with
    ``skip_bad`` are dropped from the split and reported."""
    where: Dict[Tuple[str, int], Tuple[str, int]] = {}
    by_key = {s.key: s for s in parquet} if parquet is not None else None
    out: Dict[str, List[Sample]] = {}
    for name, rows in splits.items():
        file = str(data / split_csv(name))
        keep = []
        for i, s in enumerate(rows, start=1):
            try:
                if s.key in where:
                    other, j = where[s.key]
                    raise DataValidationError(f"(prompt_type, sample_id) = {s.key} is in both {other} (row {j}) "
                                              f"and {name}; a sample may be in one split only", file=file, row=i,
                                              column="sample_id")
                if by_key is not None:
                    ref = by_key.get(s.key)
                    if ref is None:
                        raise DataValidationError(f"(prompt_type, sample_id) = {s.key} is not in {PARQUET}; the "
                                                  "parquet must hold every split row", file=file, row=i,
                                                  column="sample_id")
                    col = _same(s, ref)
                    if col is not None:
                        raise DataValidationError(f"row {s.key} disagrees with {PARQUET} in column {col!r}; the "
                                                  "split files and the parquet must be the same data",
                                                  file=file, row=i, column=col)
                where[s.key] = (name, i)
                keep.append(s)
            except DataValidationError as exc:
                if not skip_bad:
                    raise
                skipped.append(SkippedRow(file, i, str(s.sample_id), exc.column or "", _printable(str(exc))))
        out[name] = keep
    return out


def _write_report(skipped: Sequence[SkippedRow], root: Path, report_path) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "row", "sample_id", "column", "error"])
    for s in skipped:
        w.writerow([s.file, s.row, s.sample_id, s.column, s.error])
    if report_path is None:
        report_path = root / "skipped_rows.csv"
        if not os.access(root, os.W_OK):
            report_path = cache_dir("reports") / f"{root.name}_skipped_rows.csv"
    return atomic_write_text(report_path, buf.getvalue())


def read_release(root, *, skip_bad: bool = False, report_path=None, check_images: bool = True) -> Release:
    """Load a release folder (the one holding ``data/``).

    Malformed rows raise ``DataValidationError`` naming file, row and column. With ``skip_bad`` they
    are skipped instead and every skipped row is written to ``report_path`` (default
    ``ROOT/skipped_rows.csv``) and listed in ``Release.skipped``. ``check_images``: an ``img_*`` cell
    whose file is absent is an error (``--no-check-images`` for a CSV-only copy).
    """
    root, data = _data_dir(root)
    parquet = data / PARQUET
    split_files = {s: data / split_csv(s) for s in SPLITS if (data / split_csv(s)).is_file()}
    if not parquet.is_file() and not split_files:
        raise DataValidationError(f"no {PARQUET} and no split CSVs ({', '.join(split_csv(s) for s in SPLITS)}) "
                                  f"in {data}", file=str(data))
    skipped: List[SkippedRow] = []
    kw = dict(root=root, skip_bad=skip_bad, skipped=skipped, check_images=check_images)
    splits = {s: read_table(p, **kw) for s, p in split_files.items()}
    table = read_table(parquet, **kw) if parquet.is_file() else None
    splits = _check_splits(splits, table, parquet, data, skip_bad=skip_bad, skipped=skipped)
    samples = table if table is not None else [s for name in SPLITS for s in splits.get(name, [])]
    rel = Release(root=root, samples=samples, splits=splits, skipped=skipped)
    rel.zero_emotion_rows = sum(1 for s in samples if not np.any(s.emotions > 0))
    if rel.zero_emotion_rows:
        warnings.warn(ZeroEmotionWarning(
            f"{rel.zero_emotion_rows} row(s) have all 8 emotions zero (read as they are; the official code "
            "tolerates them; Sample.dominant is 'neutral' for them)"), stacklevel=2)
    if skip_bad:
        rel.report_path = _write_report(skipped, root, report_path)
        if skipped:
            print(f"emo3d data: skipped {len(skipped)} bad rows; report: {rel.report_path}", file=sys.stderr)
    return rel


# --- writing (the offline builder and tests) -------------------------------------------------
def _row(s: Sample, *, extras: bool) -> dict:
    r = {"sample_id": int(s.sample_id), "prompt_type": s.prompt_type}
    for c, t in zip(TEXT_COLS, tuple(s.texts) + ("",) * N_TEXTS):
        r[c] = t
    for e, v in zip(EMOTIONS, s.emotions):
        r[e] = format_float(v)
    for ic, bc, img, bs in zip(IMG_COLS, BS_COLS, s.images, s.blendshapes):
        r[ic] = img or ""
        r[bc] = "" if bs is None else format_vector(bs)
    if extras:
        r["prior"] = "" if s.prior is None else format_vector(s.prior)
        r["intensity"] = "" if s.intensity is None else format_float(s.intensity)
    return r


def write_table(samples: Sequence[Sample], path, *, extras: bool = True) -> Path:
    """Write samples as a release CSV or parquet (by suffix), atomically. Values as the reader reads them."""
    path = Path(path)
    rows = [_row(s, extras=extras) for s in samples]
    cols = list(columns(extras=extras))
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq
        from emo3d.io import atomic_path
        arrays = {}
        for c in cols:
            vals = [r[c] for r in rows]
            if c == "sample_id":
                arrays[c] = pa.array(vals, pa.int64())
            elif c in EMOTIONS:
                arrays[c] = pa.array([float(v) for v in vals], pa.float64())
            else:
                arrays[c] = pa.array(vals, pa.string())
        with atomic_path(path) as tmp:
            pq.write_table(pa.table(arrays), tmp)
        return path
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return atomic_write_text(path, buf.getvalue())
