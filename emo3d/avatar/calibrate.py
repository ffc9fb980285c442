"""Calibrate the default avatar against MediaPipe: ``python -m emo3d.avatar.calibrate --out DIR``.

Full path on every probe: rig -> 256x256 render -> FaceLandmarker -> 52 scores.

1. Neutral bias: where the rest face reads above ``neutral_max`` (0.15) (e.g. eyeLookDown), add a little
   of the antagonist shape (eyeLookUp) to the neutral mesh; a few bounded rounds.
2. Gains: per shape, a bounded multiplicative/bisection search on its gain so that weight 1 reads
   about ``--target`` (all 51 shapes are probed together as one batch per round).
   With ``--refine``: then landmark-space corrections of still-weak shapes through MediaPipe's
   blendshape model (``avatar.refine``), each kept only if the full path improves, and a few
   more gain rounds.
3. Fidelity report (the floors of issue 3): neutral scores, per-shape rise 0 -> 1, left/right
   sides, the MAE over random sparse expression vectors, and the FER-2013 reading (``avatar.fer``, the
   one emotion reader) of the eight emotion prototype faces when its model can be had.

The jobs live in three modules: :mod:`.calibrate_probe` (render + read), :mod:`.calibrate_search`
(bias, gains, refinement) and :mod:`.calibrate_report` (the fidelity report); this one is the CLI.

Writes ``avatar/data/calibration.json`` (with ``--write``) and ``DIR/calibration_report.json`` +
``DIR/contact_sheet.png``. Use ``--report-only`` to measure the shipped calibration.

Measurement notes: every shape's rise is measured alone (weight 0 -> 1, all others 0) except
mouthClose, measured over jawOpen at 1 as ARKit defines it (alone it pushes the lower lip through the
upper; MediaPipe reads <= 0.04 either way). Shapes MediaPipe's blendshape model cannot produce from any 2-D landmark
motion (checked by ascent on its landmark-only model, ``avatar.refine.ProxyScorer``): cheekPuff,
cheekSquint L/R, noseSneer L/R, jawForward (and mouthClose from a closed jaw); their L/R "sides"
compare readings below 1e-6. Gains up to ``--gain-max`` (4.0); the shipped gains of the mouth
shapes were finished by hand from full-path gain sweeps (readings are not monotonic in the gain).
The rig applies the gains before its stretch limits (``avatar.stretch``), which cap what a gain can do,
and the fit of the combinations (``avatar.compose``; ``--write`` re-fits it for the new gains). The gain
search reads single shapes without that fit; the report reads the rig as shipped.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import List, Optional

from emo3d.errors import InvalidInputError
from emo3d.io import atomic_path, atomic_write_json

from .calibrate_probe import CalibrateOptions
from .calibrate_report import fidelity, png_bytes
from .calibrate_search import calibrate

__all__ = ["main"]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emo3d.avatar.calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for calibration_report.json and contact_sheet.png")
    ap.add_argument("--texture", default="neutral")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--target", type=float, default=0.85)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--bias-rounds", type=int, default=4)
    ap.add_argument("--gain-max", type=float, default=4.0, help="upper bound of a shape's gain")
    ap.add_argument("--n-random", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--refine", action="store_true",
                    help="experimental: landmark-space refinement of weak shapes through the proxy model")
    ap.add_argument("--write", action="store_true", help="write avatar/data/calibration.json")
    ap.add_argument("--report-only", action="store_true", help="measure the shipped calibration only")
    ap.add_argument("--start", choices=("shipped", "unit"), default="shipped",
                    help="start the search from the shipped calibration or from unit gains")
    a = ap.parse_args(argv)
    try:
        opts = CalibrateOptions(out=a.out, texture=a.texture, size=a.size, target=a.target, rounds=a.rounds,
                                bias_rounds=a.bias_rounds, n_random=a.n_random, gain_max=a.gain_max,
                                seed=a.seed, write=a.write,
                                report_only=a.report_only, refine=a.refine)
    except InvalidInputError as e:
        print(f"calibrate: {e}", file=sys.stderr)
        return 2
    from .cli import contact_sheet
    from .default import CALIBRATION_PATH, load_calibration
    t0 = time.time()
    shipped = load_calibration()
    if opts.report_only:
        cal = shipped
    else:
        cal = calibrate(opts, shipped if a.start == "shipped" else None)
        if opts.write:
            atomic_write_json(CALIBRATION_PATH, cal)
            print(f"wrote {CALIBRATION_PATH}")
            from .compose import COMPOSE_PATH, write_fit
            from .default import limited_shapes
            write_fit(*limited_shapes(cal))         # the new gains' combinations (avatar.compose)
            print(f"wrote {COMPOSE_PATH}")
    rep, imgs, labels = fidelity(cal, opts)
    opts.out.mkdir(parents=True, exist_ok=True)
    report = {"calibration": cal, "fidelity": asdict(rep), "seconds": round(time.time() - t0, 1)}
    atomic_write_json(opts.out / "calibration_report.json", json.loads(json.dumps(report, default=float)))
    sheet = contact_sheet(imgs, labels, cols=10)
    with atomic_path(opts.out / "contact_sheet.png") as tmp:
        Path(tmp).write_bytes(png_bytes(sheet))
    print(f"neutral max {rep.neutral_max}; rise>=0.25: {rep.n_rise_ge_025}/51; sides {rep.sides_ok}/"
          f"{rep.sides_total}; MAE {rep.mae_random} over {rep.detected_random}/{rep.n_random} detected; "
          f"floors {rep.floors}")
    print(f"fer: {json.dumps(rep.fer)}")
    print(f"wrote {opts.out / 'calibration_report.json'} and {opts.out / 'contact_sheet.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
