"""The figures check (tools/figures.py): blocks are rewritten from their commands, and a block edited by hand, or
one whose marker names another command, fails the check with a diff. The repository's own blocks are checked
statically here (each names a known figure and its job's command); `make check-figures` reruns the commands."""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import figures  # noqa: E402

TABLE = "| a | b |\\n|---|---|\\n| 1 | 2 |"


def _job(name="toy", text=TABLE, **kw):
    code = f"print('# title'); print('made in 3 s'); print('{text}')"
    return figures.Job(name, ("python", "-c", code, "{out}"), (figures.Block(f"{name}-table", "-"),), **kw)


def _doc(tmp_path, body="(stale)", command=None):
    doc = tmp_path / "README.md"
    job = _job()
    head = f"<!-- figure: toy-table | {command or job.command} -->"
    doc.write_text(f"Intro.\n\n{head}\n{body}\n<!-- /figure -->\n\nAfter.\n")
    return doc, job


def test_make_rewrites_a_block_and_check_passes_then_fails_on_a_hand_edit(tmp_path):
    doc, job = _doc(tmp_path)
    logs = []
    assert figures.make([job], [doc], check=True, root=tmp_path, log=logs.append) == 1  # stale block
    assert any("(stale)" in line for line in logs)
    assert figures.make([job], [doc], check=False, root=tmp_path, log=logs.append) == 0
    text = doc.read_text()
    (block,) = figures.find_blocks(doc)
    assert block.body == "| a | b |\n|---|---|\n| 1 | 2 |"  # the table only: not the title, not the timing
    assert text.startswith("Intro.\n\n<!-- figure: toy-table | ") and text.endswith("-->\n" + block.body + "\n<!-- /figure -->\n\nAfter.\n")
    assert figures.make([job], [doc], check=True, root=tmp_path, log=logs.append) == 0
    doc.write_text(text.replace("| 1 | 2 |", "| 1 | 3 |"))  # a figure edited by hand
    logs.clear()
    assert figures.make([job], [doc], check=True, root=tmp_path, log=logs.append) == 1
    diff = "\n".join(logs)
    assert "-| 1 | 3 |" in diff and "+| 1 | 2 |" in diff


def test_a_marker_naming_another_command_fails(tmp_path):
    doc, job = _doc(tmp_path, command="python -c somethingelse")
    figures.make([job], [doc], check=False, root=tmp_path, log=lambda s: None)  # rewrites the marker too
    assert job.command in doc.read_text()
    doc.write_text(doc.read_text().replace(job.command, "python other.py"))
    logs = []
    assert figures.make([job], [doc], check=True, root=tmp_path, log=logs.append) == 1
    assert any("names `python other.py`" in line for line in logs)


def test_a_rerun_with_other_jobs_must_give_the_same_figure(tmp_path):
    doc, job = _doc(tmp_path)
    same = _job("again", same_as="toy")
    same = figures.Job("again", same.argv, (figures.Block("toy-table", "-"),), same_as="toy")
    assert figures.make([job, same], [doc], check=False, root=tmp_path, log=lambda s: None) == 0
    other = figures.Job("again", _job(text="| a | b |\\n|---|---|\\n| 1 | 9 |").argv,
                        (figures.Block("toy-table", "-"),), same_as="toy")
    logs = []
    assert figures.make([job, other], [doc], check=True, root=tmp_path, log=logs.append) == 1
    assert any("gives another toy-table than toy" in line for line in logs)


def test_unknown_and_unclosed_blocks_are_errors(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text("<!-- figure: nosuch -->\nx\n<!-- /figure -->\n")
    with pytest.raises(figures.FigureError, match="nosuch"):
        figures.make([_job()], [doc], check=True, root=tmp_path, log=lambda s: None)
    doc.write_text("<!-- figure: toy-table -->\nx\n")
    with pytest.raises(figures.FigureError, match="no '<!-- /figure -->'"):
        figures.find_blocks(doc)


def test_a_failing_command_is_named(tmp_path):
    doc, _ = _doc(tmp_path)
    bad = figures.Job("toy", ("python", "-c", "import sys; sys.exit(3)"), (figures.Block("toy-table", "-"),))
    with pytest.raises(figures.FigureError, match="job toy failed"):
        figures.make([bad], [doc], check=True, root=tmp_path, log=lambda s: None)


def test_the_repository_blocks_name_known_figures_and_their_commands():
    jobs = {b.name: j for j in figures.JOBS for b in j.blocks if not j.same_as}
    seen = set()
    for f in figures.doc_files():
        for b in figures.find_blocks(f):
            assert b.name in jobs, f"{f}: unknown figure {b.name}"
            assert b.command == jobs[b.name].command, f"{f}: block {b.name} names another command"
            assert b.body.strip(), f"{f}: block {b.name} is empty (run make figures)"
            assert not re.search(r"\b\d+(\.\d+)? ?(s|min)\b.*\bmade\b|\bMade in\b", b.body), "a timing in a block"
            seen.add(b.name)
    fast = {b.name for j in figures.JOBS if not j.slow and not j.same_as for b in j.blocks}
    assert fast <= seen, f"figures shown nowhere: {sorted(fast - seen)}"


def test_readme_is_short_and_every_page_it_links_is_in_the_site():
    import yaml

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]

    def pages(items):
        for item in items:
            for value in item.values():
                yield from (pages(value) if isinstance(value, list) else [value])

    in_site = set(pages(nav))
    linked = set(re.findall(r"\]\(docs/([^)#]+\.md)", readme))
    assert linked, "the README links no page"
    for page in linked:
        assert (ROOT / "docs" / page).is_file(), page
        assert page in in_site, f"docs/{page} is not in mkdocs.yml's nav"
    assert {p.name for p in (ROOT / "docs").glob("*.md")} <= in_site  # no page left out of the site


def test_every_job_runs_with_its_kernels_capped_at_avx2(tmp_path):
    # hosts of the pool differ (AVX2 only, AVX512 + bf16): a figure must not depend on which one made it
    code = ("import os; print('| a | b |'); print('|---|---|'); "
            "print('| ' + os.environ['ATEN_CPU_CAPABILITY'] + ' | ' + os.environ['ONEDNN_MAX_CPU_ISA'] + ' |')")
    job = figures.Job("toy", ("python", "-c", code, "{out}"), (figures.Block("toy-table", "-"),))
    got = figures.run_job(job, root=tmp_path, log=lambda *_: None)
    assert got["toy-table"].splitlines()[-1] == "| avx2 | AVX2 |"
    code = "import torch; print('| a |'); print('|---|'); print('| ' + torch.backends.cpu.get_cpu_capability() + ' |')"
    job = figures.Job("toy", ("python", "-c", code, "{out}"), (figures.Block("toy-table", "-"),))
    assert figures.run_job(job, root=tmp_path, log=lambda *_: None)["toy-table"].splitlines()[-1] == "| AVX2 |"
