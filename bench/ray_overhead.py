"""What Ray costs on one machine: ``unmask reproduce TABLE --quick`` with ``--jobs 2`` (local processes) and
with ``--executor ray`` on a local 2-CPU Ray started here, in one run.

The quick data and the AU-pretrained tiny backbones are made once first (untimed); between the two runs the
runs, tables and feature caches are removed, so both time the same work: the feature caches and every run of
the table(s). The last line is ``overhead: X``, Ray's wall
time over the local one (above 1: Ray is slower).

    python bench/ray_overhead.py                    # every table (about 2 x 10 minutes on a 2-core CPU)
    python bench/ray_overhead.py --table ablation   # one table
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def timed(argv: list[str]) -> float:
    from unmask.cli import main

    t0 = time.perf_counter()
    rc = main(argv)
    if rc:
        sys.exit(f"{' '.join(argv)} failed ({rc})")
    return time.perf_counter() - t0


def setup(out: Path, tables: list[str]) -> None:
    """The quick data and pretrained backbones the tables need, as `unmask reproduce --quick` makes them."""
    from unmask.experiments.quick import quick_datasets, quick_pretrain
    from unmask.experiments.runner import expand, make_context, plan, pretraining_needed, table_names
    from unmask.experiments.tables import load_table

    names = table_names(tables)
    datasets = quick_datasets(out, list(dict.fromkeys(d for n in names for d in load_table(n).quick_datasets)),
                              progress=False)
    ctx = make_context(out, datasets, quick=True)
    cells = [c for n in names for c in plan(ctx, expand(ctx, load_table(n), []))]
    quick_pretrain(out, pretraining_needed(ctx, cells), jobs=2, progress=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", default="all", help="table(s) to reproduce, comma-separated (default: all)")
    p.add_argument("--out", help="work folder (default: a temporary one, removed after)")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for key in ("RAY_USAGE_STATS_ENABLED", "RAY_AUTH_MODE"):
        os.environ.setdefault(key, "0" if key == "RAY_USAGE_STATS_ENABLED" else "disabled")
    import ray

    import unmask

    root = Path(args.out or tempfile.mkdtemp(prefix="ray_overhead_"))
    tables = args.table.split(",")
    setup(root, tables)  # untimed; a prepared set records its path, so both runs use this one folder
    argv = ["reproduce", *tables, "--quick", "--out", str(root), "--quiet"]
    t_local = timed([*argv, "--jobs", "2"])
    # the same work again on Ray: no runs, no tables, no feature caches (the data and backbones stay)
    shutil.rmtree(root / "runs")
    shutil.rmtree(root / "tables")
    for cache in root.glob("data/*/prepared/features"):
        shutil.rmtree(cache)
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(unmask.__file__).resolve().parents[1]),
                                       "HF_HUB_OFFLINE": "1"}})
    t_start = time.perf_counter() - t0
    t_ray = timed([*argv, "--executor", "ray"])
    ray.shutdown()
    print(f"tables: {', '.join(tables)}; 2 CPUs each")
    print(f"local --jobs 2:       {t_local:7.1f} s")
    print(f"ray (2-CPU, local):   {t_ray:7.1f} s (+ {t_start:.1f} s to start Ray)")
    if not args.out:
        shutil.rmtree(root, ignore_errors=True)
    print(f"overhead: {t_ray / t_local:.2f}")


if __name__ == "__main__":
    main()
