"""Expected calibration error of a run's test folds before and after its temperatures (docs/trust.md).

Pools every finished fold's test predictions (``predictions.csv``, raw) with the temperatures the fold fitted
on its validation subjects (``calibration.json``), as the report's calibration section does, and prints per
task: clips, ECE (15 bins) and NLL, raw and calibrated, and the temperatures per fold. Deterministic.

    python bench/calibration_ece.py /tmp/demo22/run
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="a run folder (runs/demo/run)")
    args = ap.parse_args(argv)

    from unmask.calibration import ece, nll
    from unmask.eval.calibration_report import pooled_test
    from unmask.eval.report import run_tasks

    run = Path(args.run)
    meta = {p.parent.name: json.loads(p.read_text()) for p in sorted((run / "folds").glob("*/metrics.json"))}
    tasks = run_tasks(meta)
    pooled, missing = pooled_test(run, tasks)
    print(f"{run.name}: {len(meta)} fold(s); without a calibration record: {', '.join(missing) or 'none'}")
    print(f"{'task':<10} {'clips':>5} {'ECE raw':>8} {'ECE cal':>8} {'NLL raw':>8} {'NLL cal':>8}")
    for t in tasks:
        if t.name not in pooled:
            continue
        raw, cal, y = pooled[t.name]
        print(f"{t.name:<10} {len(y):>5} {ece(t.kind, raw, y):>8.4f} {ece(t.kind, cal, y):>8.4f} "
              f"{nll(t.kind, raw, y):>8.4f} {nll(t.kind, cal, y):>8.4f}")
    for fold in sorted(meta):
        path = run / "folds" / fold / "calibration.json"
        if path.is_file():
            temps = json.loads(path.read_text()).get("temperature", {})
            print(f"  {fold}: " + ", ".join(f"{k} T={v:.3f}" if isinstance(v, float) else f"{k} T={v}"
                                          for k, v in temps.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
