"""The figures of README.md and docs/ as generated artefacts: every figure block is rewritten from the command
that makes it, and CI checks that it still is what that command prints.

A block in a Markdown file:

    <!-- figure: dsid-quick-ablation | unmask reproduce all --quick --out runs/figures/dsid-quick --jobs 2 -->
    | Method | TER acc (ours) | ...
    <!-- /figure -->

names its figure and the command that makes it (the marker's command must be the job's: a block cannot drift
away from its command). A *job* is one command; it makes one or more figures (``reproduce all --quick`` makes
Tables I-V). Every job here is deterministic on the same code and machine kind (same seed, fixed thread counts
where a thread count would change a sum; ``--jobs`` changes no number, and ``same_as`` reruns a job with
another ``--jobs`` and requires the same figure). Timings are never inside a block: they sit beside it in the
prose, marked as measured, with the machine and load.

    python tools/figures.py                 # rerun every fast job, rewrite the blocks (make figures)
    python tools/figures.py --check         # rerun them and fail, with a diff, where a block differs
    python tools/figures.py --slow          # also the slow jobs (the real-face benches, tens of minutes)
    python tools/figures.py --only demo     # some jobs (and what they need)
    python tools/figures.py --list          # jobs, their commands and blocks, where each block is
    python tools/figures.py --keep          # reuse finished work in runs/figures (every command resumes)

Without ``--keep`` each job's output folder is removed first, so a check computes everything from scratch.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = "runs/figures"  # relative to ROOT; the commands in the markers name it
MARKER = re.compile(r"^<!-- figure: (?P<name>[a-z0-9][a-z0-9-]*)(?: \| (?P<command>.+?))? -->\n", re.M)
END = "<!-- /figure -->"


class FigureError(Exception):
    """A job failed, a block is malformed or names an unknown figure."""


# --- what makes each figure ------------------------------------------------------------------------------------

def md_tables(text: str) -> str:
    """The Markdown tables of a file (lines starting with ``|``), one blank line between tables; no headers, no
    notes (which may carry timings)."""
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            out.append(line)
        elif out and out[-1] != "":
            out.append("")
    return "\n".join(out).strip("\n")


def first_table(text: str) -> str:
    """The first Markdown table of a file (a table of ours, not the published numbers printed after it)."""
    return md_tables(text).split("\n\n")[0]


def report_metrics(text: str) -> str:
    """The ``## Metrics`` section of a run's report.md (the table and the lines on chance)."""
    m = re.search(r"^## Metrics\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not m:
        raise FigureError("report.md has no '## Metrics' section")
    return m.group(1).strip("\n")


def demoted(text: str, skip: int = 0) -> str:
    """A generated Markdown page as a block inside another page: its first ``skip`` lines (title, command) left
    out, its ``##`` headings made bold lines."""
    lines = text.splitlines()[skip:]
    return "\n".join(f"**{line[3:]}**" if line.startswith("## ") else line for line in lines).strip("\n")


def stdout_lines(pattern: str) -> Callable[[str], str]:
    """The lines of a command's standard output matching ``pattern``, as a text block."""
    rx = re.compile(pattern)

    def pick(text: str) -> str:
        lines = [line for line in text.splitlines() if rx.search(line)]
        if not lines:
            raise FigureError(f"no line of the command's output matches {pattern!r}")
        return "```\n" + "\n".join(lines) + "\n```"

    return pick


def table_cell(text: str, row: str, column: str) -> str:
    """The cell of a Markdown table in ``text`` at the row whose first cell is ``row`` and the column headed
    ``column``."""
    header: list[str] = []
    for line in text.splitlines():
        if not line.startswith("|"):
            header = []
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not header:
            header = cells
        elif cells[0] == row and column in header:
            return cells[header.index(column)]
    raise FigureError(f"no table with a row {row!r} and a column {column!r}")


def methods_table(runs: Path) -> str:
    """The README's table of the three methods: each one's quick command and its headline figure, read from the
    files the demo, ``reproduce ifdd --quick`` and ``reproduce medn --quick`` jobs wrote."""
    import json

    demo = json.loads((runs / "demo/run/summary.json").read_text(encoding="utf-8"))["tasks"]

    def acc(task: str) -> str:
        s = demo[task]
        lo, hi = s["ci95"]["accuracy"]
        return f"{s['pooled']['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]"

    ifdd = (runs / "ifdd-quick/tables/ifdd.md").read_text(encoding="utf-8")
    medn = (runs / "medn-quick/medn_table.md").read_text(encoding="utf-8")
    rows = [
        ("**DSID**", "the felt emotion behind a masked (disguised) expression, and the shown one", "MFED",
         "`make demo`", f"TER {acc('true')}, DER {acc('disguised')} (accuracy; chance 0.167)",
         "[DSID](docs/dsid.md)"),
        ("**IFDD**", "dynamic expressions in in-the-wild clips", "DFEW, FERV39k, MAFW",
         "`unmask reproduce ifdd --quick`",
         f"WAR {table_cell(ifdd, 'IFDD', 'WAR % [95% CI]')} % (frame average: "
         f"{table_cell(ifdd, 'frame average + linear', 'WAR % [95% CI]')} %)", "[IFDD](docs/ifdd.md)"),
        ("**MEDN** (our reconstruction)", "micro-expressions and their action units",
         "CASME II, SAMM, SMIC, CAS(ME)^3, MEGC2019", "`unmask reproduce medn --quick`",
         f"UF1 {table_cell(medn, 'medn', 'UF1 [95% CI]')} (motion branch alone: "
         f"{table_cell(medn, 'motion_only', 'UF1 [95% CI]')})", "[MEDN](docs/medn.md)"),
    ]
    lines = ["| method | recognises | datasets | quick run (synthetic) | its result [95% CI] | page |",
             "|---|---|---|---|---|---|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


@dataclass(frozen=True)
class Block:
    """One figure: read from ``path`` (relative to the job's output folder; ``"-"`` = its standard output; ``""``:
    ``fmt`` gets the folder itself) and formatted by ``fmt``."""

    name: str
    path: str
    fmt: Callable = md_tables


@dataclass(frozen=True)
class Job:
    name: str
    argv: tuple[str, ...]  # {out} is the job's output folder
    blocks: tuple[Block, ...]
    slow: bool = False
    needs: tuple[str, ...] = ()  # jobs whose output this one reads
    same_as: str | None = None  # a rerun of that job (another --jobs): its blocks must equal that job's
    out: str = ""  # output folder (default runs/figures/<name>)
    ok: tuple[int, ...] = (0,)  # exit statuses that are a success (predict exits 1 when an input has no face)
    merge: bool = False  # standard error into standard output, as a terminal shows them

    @property
    def folder(self) -> str:
        return self.out or f"{OUT}/{self.name}"

    @property
    def command(self) -> str:
        """The command as the markers and the docs show it (relative paths, from the repository root)."""
        if not self.argv:
            return "made from the output of " + ", ".join(self.needs)
        return " ".join(shlex.quote(a).replace("'{out}'", "{out}") for a in self.argv).replace("{out}", self.folder)


DSID_TABLES = ("paradigm", "ablation", "alpha", "beta", "models")

JOBS: tuple[Job, ...] = (
    Job("demo", ("unmask", "demo", "--out", "{out}"), (
        Block("demo-summary", "-", stdout_lines(r"emotion: accuracy")),
        Block("demo-report", "run/report.md", report_metrics))),
    Job("dsid-quick", ("unmask", "reproduce", "all", "--quick", "--out", "{out}", "--jobs", "2"),
        tuple(Block(f"dsid-quick-{t}", f"tables/{t}.md") for t in DSID_TABLES)),
    # the same numbers whatever --jobs: one quick table rerun with --jobs 1 must give the --jobs 2 table
    Job("dsid-quick-jobs1", ("unmask", "reproduce", "paradigm", "--quick", "--out", "{out}", "--jobs", "1"),
        (Block("dsid-quick-paradigm", "tables/paradigm.md"),), same_as="dsid-quick"),
    Job("ifdd-quick", ("unmask", "reproduce", "ifdd", "--quick", "--out", "{out}", "--jobs", "2"),
        (Block("ifdd-quick", "tables/ifdd.md", first_table),)),
    Job("medn-quick", ("unmask", "reproduce", "medn", "--quick", "--out", "{out}", "--jobs", "2"),
        (Block("medn-quick", "medn_table.md"),)),
    Job("predict-example", ("unmask", "predict", f"{OUT}/demo/run/folds/s01", "../shared/data/faces/single_face.jpg",
                            "../shared/data/faces/0-f1-su-ph.jpg", "../shared/data/faces/free-mountain-vector-01.jpg",
                            "../shared/data/faces/single_face.mp4", "--every", "24", "--no-progress"),
        (Block("predict-example", "-", lambda t: "```\n" + t.rstrip("\n") + "\n```"),), needs=("demo",), ok=(0, 1),
        merge=True, out=f"{OUT}/demo"),
    Job("ood-demo", ("python", "bench/ood_flags.py", f"{OUT}/demo/run/folds/s02"),
        (Block("ood-demo", "-", lambda t: "```\n" + t.rstrip("\n") + "\n```"),), needs=("demo",), out=f"{OUT}/demo"),
    Job("ece-demo", ("python", "bench/calibration_ece.py", f"{OUT}/demo/run"),
        (Block("ece-demo", "-", lambda t: "```\n" + t.rstrip("\n") + "\n```"),), needs=("demo",), out=f"{OUT}/demo"),
    # slow (tens of minutes on a 2-core CPU): `--slow`
    Job("medn-ablations", ("unmask", "reproduce", "medn", "--quick", "--out", "{out}", "--jobs", "2", "--variants",
                           "medn,motion_only,emotion_only,no_orth,rgb_frames"),
        (Block("medn-ablations", "medn_table.md"),), slow=True),
    Job("realface-dsid", ("python", "bench/realface_dsid.py", "--out", "{out}"),
        (Block("realface-dsid", "realface_bench.md", lambda t: demoted(t, skip=4)),), slow=True),
    Job("realface-photos", ("python", "bench/realface_photos.py", "--bench-out", f"{OUT}/realface-dsid"),
        (Block("realface-photos", "-", md_tables),), slow=True, needs=("realface-dsid",),
        out=f"{OUT}/realface-dsid"),
    # no command of its own: the README's methods table, from the outputs of the jobs it needs
    Job("methods", (), (Block("methods", "", methods_table),), needs=("demo", "ifdd-quick", "medn-quick"), out=OUT),
)


# --- the blocks in the docs ------------------------------------------------------------------------------------

@dataclass
class Found:
    file: Path
    name: str
    command: str | None
    start: int  # offset of the body
    end: int  # offset of the end marker
    body: str = field(repr=False, default="")


def doc_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def find_blocks(path: Path, text: str | None = None) -> list[Found]:
    text = path.read_text(encoding="utf-8") if text is None else text
    found = []
    for m in MARKER.finditer(text):
        end = text.find(END, m.end())
        nxt = MARKER.search(text, m.end())
        if end < 0 or (nxt and nxt.start() < end):
            line = text.count("\n", 0, m.start()) + 1
            raise FigureError(f"{path}:{line}: figure '{m['name']}' has no '{END}' before the next block")
        found.append(Found(path, m["name"], m["command"], m.end(), end, text[m.end():end].rstrip("\n")))
    return found


def render(text: str, path: Path, figures: dict[str, tuple[str, str]]) -> str:
    """``text`` with every block of a figure in ``figures`` (name -> (command, body)) rewritten."""
    out, pos = [], 0
    for b in find_blocks(path, text):
        if b.name not in figures:
            continue
        command, body = figures[b.name]
        marker_start = text.rfind("<!-- figure:", 0, b.start)
        out += [text[pos:marker_start], f"<!-- figure: {b.name} | {command} -->\n", body, "\n"]
        pos = b.end
    out.append(text[pos:])
    return "".join(out)


# --- running -----------------------------------------------------------------------------------------------------

#: The figures are made on hosts of a pool whose CPUs differ (some have AVX512 and bf16 instructions, some only
#: AVX2). torch, oneDNN and MKL pick their kernels by the CPU, and kernels of another width sum floats in
#: another order, so every job runs with its kernels capped at AVX2, which every host of the pool has: an AVX2
#: host runs what it runs anyway, a wider one the same kernels. (The synthetic configs also extract in fp32:
#: features.precision=auto would pick bf16 only where the CPU has it.) A user's own runs are not capped.
SAME_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def run_job(job: Job, *, root: Path = ROOT, keep: bool = False, log=print) -> dict[str, str]:
    """Run a job's command from ``root`` (output folder removed first unless ``keep``); its figures by name."""
    folder = root / job.folder
    if not job.argv:  # made from other jobs' files
        return {b.name: b.fmt(folder).rstrip("\n") for b in job.blocks}
    if not keep and not job.needs and folder.exists():
        shutil.rmtree(folder)
    argv = [a.replace("{out}", job.folder) for a in job.argv]
    exe = shutil.which(argv[0], path=str(Path(sys.executable).parent)) if argv[0] != "python" else sys.executable
    argv[0] = exe or argv[0]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **SAME_KERNELS}
    (root / OUT).mkdir(parents=True, exist_ok=True)
    out_file, err_file = root / OUT / f"{job.name}.stdout", root / OUT / f"{job.name}.stderr"
    log(f"[{job.name}] {job.command}   (progress: tail -f {OUT}/{job.name}.stderr)")
    t0 = time.time()
    with open(out_file, "w", encoding="utf-8") as out, open(err_file, "w", encoding="utf-8") as err:
        code = subprocess.run(argv, cwd=root, env=env, stdout=out, stderr=out if job.merge else err).returncode
    stdout, stderr = out_file.read_text(encoding="utf-8"), err_file.read_text(encoding="utf-8", errors="replace")
    log(f"[{job.name}] exit {code} after {time.time() - t0:.0f} s")
    if code not in job.ok:
        raise FigureError(f"job {job.name} failed (exit {code}): {job.command}\n{stderr[-2000:]}")
    figures = {}
    for b in job.blocks:
        if not b.path:
            figures[b.name] = b.fmt(folder).rstrip("\n")
            continue
        source = stdout if b.path == "-" else (folder / b.path).read_text(encoding="utf-8")
        figures[b.name] = b.fmt(source).rstrip("\n")
    return figures


def select(names: Sequence[str] | None, slow: bool, jobs: Sequence[Job] = JOBS) -> list[Job]:
    by_name = {j.name: j for j in jobs}
    unknown = [n for n in names or () if n not in by_name]
    if unknown:
        raise FigureError(f"unknown job(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    wanted = set(names) if names else {j.name for j in jobs if slow or not j.slow}
    grow = True
    while grow:  # what the wanted jobs need
        extra = {d for n in wanted for d in (by_name[n].needs + ((by_name[n].same_as,) if by_name[n].same_as else ()))}
        grow = not extra <= wanted
        wanted |= extra
    return [j for j in jobs if j.name in wanted]


def make(jobs: Sequence[Job], files: Iterable[Path], *, check: bool, keep: bool = False, root: Path = ROOT,
         log=print) -> int:
    """Run ``jobs``, then rewrite (or, with ``check``, compare) the blocks of their figures in ``files``."""
    files = list(files)
    blocks = [b for f in files for b in find_blocks(f)]
    known = {b.name for j in JOBS for b in j.blocks} | {b.name for j in jobs for b in j.blocks}
    unknown = sorted({f"{b.file.relative_to(root)}: {b.name}" for b in blocks if b.name not in known})
    if unknown:
        raise FigureError("blocks naming no known figure: " + "; ".join(unknown))
    figures: dict[str, tuple[str, str]] = {}
    problems: list[str] = []
    for job in jobs:
        made = run_job(job, root=root, keep=keep, log=log)
        for name, body in made.items():
            if job.same_as:  # an invariance check: the same figure as the job it reruns
                ref = figures.get(name)
                if ref is not None and ref[1] != body:
                    problems.append(f"{job.name} ({job.command}) gives another {name} than {job.same_as}:\n"
                                    + _diff(ref[1], body, job.same_as, job.name))
                continue
            figures[name] = (job.command, body)
    changed = []
    for f in files:
        text = f.read_text(encoding="utf-8")
        new = render(text, f, figures)
        for b in find_blocks(f, text):
            if b.name in figures and b.command and b.command != figures[b.name][0]:
                problems.append(f"{f.relative_to(root)}: block {b.name} names `{b.command}`, its job runs "
                                f"`{figures[b.name][0]}`")
        if new != text:
            changed.append(f)
            if check:
                problems.append(_diff(text, new, f"{f.relative_to(root)} (in the repository)",
                                      f"{f.relative_to(root)} (as the commands print it)"))
            else:
                f.write_text(new, encoding="utf-8")
                log(f"rewrote {f.relative_to(root)}")
    missing = sorted(set(figures) - {b.name for b in blocks})
    if missing:
        log(f"note: figures made but shown nowhere: {', '.join(missing)}")
    if problems:
        log("\n".join(problems))
        log(f"figures check FAILED: {len(problems)} problem(s); `make figures` rewrites the blocks from the commands")
        return 1
    log(f"figures: {len(figures)} figure(s) {'checked' if check else 'written'}, "
        f"{'all as the commands print them' if check else f'{len(changed)} file(s) changed'}")
    return 0


def _diff(a: str, b: str, name_a: str, name_b: str) -> str:
    return "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), name_a, name_b))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--check", action="store_true", help="compare, do not rewrite; exit 1 with a diff on a difference")
    p.add_argument("--slow", action="store_true", help="also the slow jobs (real-face benches)")
    p.add_argument("--only", nargs="+", metavar="JOB", help="these jobs (and the jobs they need)")
    p.add_argument("--keep", action="store_true", help="keep finished work in runs/figures (commands resume)")
    p.add_argument("--list", action="store_true", help="list jobs, commands, blocks and where they are")
    args = p.parse_args(argv)
    try:
        jobs = select(args.only, args.slow)
        if args.list:
            where: dict[str, list[str]] = {}
            for f in doc_files():
                for b in find_blocks(f):
                    where.setdefault(b.name, []).append(str(f.relative_to(ROOT)))
            for j in JOBS:
                print(f"{j.name}{' (slow)' if j.slow else ''}: {j.command}")
                for b in j.blocks:
                    print(f"    {b.name}: {', '.join(where.get(b.name, ['(shown nowhere)']))}")
            return 0
        return make(jobs, doc_files(), check=args.check, keep=args.keep)
    except FigureError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
