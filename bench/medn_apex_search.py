"""How close the apex search of `unmask predict` (unmask.data.onset_apex.search_apex) lands to the true apex of
the synthetic micro-expression set: `python bench/medn_apex_search.py [--subjects 6 --clips 16 --seed 1 --out DIR]`.

Prints the error distribution (found - true apex, in frames at 100 fps), searching from the true onset and from
the first frame (what `unmask predict` does without --onset)."""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np

from unmask.data.faces import create_detector
from unmask.data.onset_apex import search_apex
from unmask.synth.micro import MicroConfig, generate_micro


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=6)
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1,
                    help="the synthetic set's seed (default 1: the search's threshold was chosen on seed 0)")
    ap.add_argument("--out", help="where to write the synthetic set (default: a temporary folder)")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="apex_search_"))
    if not (out / "clips.csv").is_file():
        generate_micro(out, MicroConfig(subjects=args.subjects, clips=args.clips, seed=args.seed), progress=False)
    with open(out / "clips.csv", newline="") as f:
        truth = list(csv.DictReader(f))
    detector = create_detector("auto")
    for start in ("onset", "first frame"):
        err = np.array([search_apex(out / "videos" / f"{r['clip_id']}.mp4", int(r["onset"]) if start == "onset" else 0,
                                    detector)[0] - int(r["apex"]) for r in truth])
        a = np.abs(err)
        print(f"from the {start}: {len(err)} clips, |error| <= 1: {np.mean(a <= 1):.2f}, <= 2: {np.mean(a <= 2):.2f}, "
              f"<= 5: {np.mean(a <= 5):.2f}; median {np.median(err):+.0f}, max |error| {a.max()} frames "
              f"(errors {sorted(err.tolist())})")


if __name__ == "__main__":
    main()
