"""``emo3d data``: build, check and inspect Emo3D-format data.

    emo3d data build --out DIR --samples N --seed S [--no-images] [--text llm --llm-base-url URL]
    emo3d data check ROOT [--skip-bad] [--report FILE] [--no-check-images]
    emo3d data check --source hf [--out DIR]      (download llm-lab/Emo3D, then check it)
    emo3d data fetch [--source hf|local] [--path ROOT] [--out DIR]
    emo3d data card ROOT
    emo3d data stats [ROOT] [--samples N --seed S] [--json]   (per-emotion statistics beside the paper's Table 3)
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import List, Optional

from emo3d.errors import Emo3DError, InvalidInputError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="emo3d data", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build Emo3D-format data offline (resumable)")
    b.add_argument("--out", required=True, type=Path)
    b.add_argument("--samples", type=int, default=2000)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--no-images", action="store_true", help="rows only; blenshape_score_1 = the FACS prior")
    b.add_argument("--renders", type=int, default=4, help="renders per sample (1..4)")
    b.add_argument("--size", type=int, default=256, help="image size in pixels")
    b.add_argument("--ssaa", type=int, default=1, help="supersampling of the renders (1 = fastest)")
    b.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: the core count; 1 = this process), each with its own "
                        "renderer and FaceLandmarker; the output is the same bytes for any count")
    b.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                   help="run the shards as Ray tasks on a cluster ('auto': the one this machine belongs to; "
                        "pip install 'emo3d[ray]')")
    b.add_argument("--shard-size", type=int, default=100)
    b.add_argument("--text", choices=("template", "llm"), default="template")
    b.add_argument("--llm-base-url", default=None, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    b.add_argument("--llm-model", default="gpt-4o-mini")
    b.add_argument("--no-primitives", action="store_true")
    b.add_argument("--primitive-faces", nargs="+", default=[], metavar="GENDER=HEAD",
                   help="heads of the primitive set's male/female images, e.g. male=m.glb female=f.glb "
                        "(a .glb/.gltf or a default texture name); without them its image cells stay empty")
    b.add_argument("--no-card", action="store_true")
    b.add_argument("--overwrite", action="store_true", help="replace DIR / restart an unfinished build")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    c = sub.add_parser("check", help="validate a release folder (the one holding data/)")
    c.add_argument("root", type=Path, nargs="?", default=None, help="local release folder (--source local)")
    c.add_argument("--source", choices=("local", "hf"), default="local",
                   help="hf: download llm-lab/Emo3D through huggingface_hub first (fails at once offline)")
    c.add_argument("--out", type=Path, default=None, help="download folder for --source hf")
    c.add_argument("--timeout", type=float, default=10.0)
    c.add_argument("--skip-bad", action="store_true", help="skip malformed rows and write a report")
    c.add_argument("--report", type=Path, default=None)
    c.add_argument("--no-check-images", action="store_true")
    f = sub.add_parser("fetch", help="get the official release (Hugging Face llm-lab/Emo3D) or check a local copy")
    f.add_argument("--source", choices=("hf", "local"), default="hf")
    f.add_argument("--path", type=Path, default=None, help="local copy of the release (--source local)")
    f.add_argument("--out", type=Path, default=None, help="download folder (default: the emo3d cache)")
    f.add_argument("--timeout", type=float, default=10.0)
    f.add_argument("--no-extract", action="store_true", help="leave the image archives (data/*.zip) zipped")
    k = sub.add_parser("card", help="(re)write the dataset card of a folder")
    k.add_argument("root", type=Path)
    t = sub.add_parser("stats", help="per-emotion word statistics beside the paper's Table 3: of a folder, or "
                                     "(no ROOT) of the descriptions a build with --samples/--seed writes")
    t.add_argument("root", type=Path, nargs="?", default=None, help="a release folder (the one holding data/)")
    t.add_argument("--samples", type=int, default=2000, help="without ROOT: samples to describe (default 2000)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--json", action="store_true", help="one JSON object (emotion -> statistics) instead of tables")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except Emo3DError as exc:
        print(f"emo3d data: error: {exc}", file=sys.stderr)
        return 2


def _pairs(items, flag: str):
    out = []
    for it in items:
        key, sep, val = str(it).partition("=")
        if not sep or not key or not val:
            raise InvalidInputError(f"{flag} takes GENDER=HEAD pairs (e.g. male=m.glb), got {it!r}")
        out.append((key, val))
    return tuple(out)


def _summary(rel) -> str:
    n_img = sum(1 for s in rel.samples for x in s.images if x)
    n_bs = sum(1 for s in rel.samples for x in s.blendshapes if x is not None)
    splits = ", ".join(f"{k} {len(v)}" for k, v in rel.splits.items())
    zero = f"; {rel.zero_emotion_rows} with all-zero emotions (warned)" if rel.zero_emotion_rows else ""
    return (f"{rel.root}: {len(rel.samples)} samples, {n_img} images, {n_bs} blendshape vectors; "
            f"splits: {splits or 'none'}; skipped {len(rel.skipped)}{zero}")


def _run(args) -> int:
    if args.cmd == "build":
        from .builder import BuildOptions, build
        res = build(BuildOptions(out=args.out, samples=args.samples, seed=args.seed, images=not args.no_images,
                                 renders=args.renders, image_size=args.size, shard_size=args.shard_size,
                                 ssaa=args.ssaa, workers=args.workers, ray=args.ray,
                                 text=args.text, llm_base_url=args.llm_base_url, llm_model=args.llm_model,
                                 primitives=not args.no_primitives, card=not args.no_card,
                                 primitive_faces=_pairs(args.primitive_faces, "--primitive-faces"),
                                 overwrite=args.overwrite, progress=not args.quiet))
        print(f"built {res.out}: {res.samples} samples, {res.images} images ({res.faces_missed} without a "
              f"detected face), {res.distinct_texts} distinct texts, splits {res.splits}, {res.seconds:.1f} s")
        return 0
    if args.cmd == "check":
        from .reader import read_release
        root = args.root
        if args.source == "hf":
            from .hf import fetch_release
            root = fetch_release(source="hf", out=args.out, timeout=args.timeout)
        elif root is None:
            print("emo3d data check: give ROOT (the folder holding data/) or --source hf", file=sys.stderr)
            return 2
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rel = read_release(root, skip_bad=args.skip_bad, report_path=args.report,
                               check_images=not args.no_check_images)
        for w in caught:
            print(f"emo3d data check: warning: {w.message}", file=sys.stderr)
        print(_summary(rel))
        if rel.report_path:
            print(f"report: {rel.report_path}")
        return 0
    if args.cmd == "fetch":
        from .hf import fetch_release
        root = fetch_release(source=args.source, path=args.path, out=args.out, timeout=args.timeout,
                             extract=not args.no_extract)
        print(root)
        return 0
    if args.cmd == "stats":
        from .stats import sample_texts, text_statistics
        if args.root is not None:
            from .reader import read_release
            samples = read_release(args.root, check_images=False).samples
        else:
            from emo3d.options import check_int
            from .builder import make_sample
            check_int(args.samples, "--samples", 1)
            check_int(args.seed, "--seed", 0)
            samples = [make_sample(i, args.seed).sample for i in range(args.samples)]
        ts = text_statistics(sample_texts(samples))
        if args.json:
            import json
            print(json.dumps(ts.as_dict(), indent=1))
        else:
            from .card import table3_lines
            print("\n".join(table3_lines(ts)))
        return 0
    if args.cmd == "card":
        from .card import write_card
        for p in write_card(args.root):
            print(p)
        return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
