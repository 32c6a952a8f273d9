"""`unmask synth OUT --kind micro`: brief low-intensity AU movements, an ambiguous pair told apart only by dynamics."""

from __future__ import annotations

import csv

import pytest

from unmask.cli import main
from unmask.data.manifest import read_manifest
from unmask.data.video import probe
from unmask.errors import UnmaskError
from unmask.synth.micro import AMBIGUOUS, MicroConfig, plan_micro


def test_the_ambiguous_pair_shares_aus_and_apex_and_differs_only_in_the_rise():
    cfg = MicroConfig()
    plans = {e: [plan_micro(cfg, 0, k, e) for k in range(40)] for e in AMBIGUOUS}
    for e, ps in plans.items():
        assert all(set(p.aus) <= {"AU06", "AU12"} and "AU12" in p.aus for p in ps)
        assert all(p.dynamics == ("fast" if e == "happiness" else "slow") for p in ps)
    # same clip index -> same draw of timing, peak and optional AU for both classes: identical onset and apex
    for a, b in zip(*plans.values()):
        assert (a.onset, a.apex, a.offset, a.peak, a.aus) == (b.onset, b.apex, b.offset, b.peak, b.aus)
        assert a.frames[a.onset] == b.frames[b.onset] and a.frames[a.apex] == b.frames[b.apex]
        mid = (a.onset + a.apex) // 2
        assert a.frames[mid]["AU12"] > 2 * b.frames[mid]["AU12"]  # fast rise vs slow rise
    # low intensity, brief, at 100 fps
    p = plans["happiness"][0]
    assert max(f["AU12"] for f in p.frames) < 0.8
    assert 0.2 * cfg.fps <= p.offset - p.onset <= 0.5 * cfg.fps


def test_micro_set_on_disk_with_ground_truth(tmp_path, capsys):
    out = tmp_path / "micro"
    args = ["synth", str(out), "--kind", "micro", "--subjects", "2", "--clips", "4", "--size", "128x112",
            "--ambiguous", "0.5", "--quiet"]
    assert main(args) == 0
    assert "wrote 8 micro-expression clips" in capsys.readouterr().out
    m = read_manifest(out / "manifest.csv")
    assert [t.name for t in m.tasks] == ["emotion", "aus"] and m.subjects == ["s01", "s02"]
    with open(out / "clips.csv", newline="") as f:
        truth = {r["clip_id"]: r for r in csv.DictReader(f)}
    assert sum(int(r["ambiguous"]) for r in truth.values()) == 4
    for c in m:
        r = truth[c.clip_id]
        assert c.labels["emotion"] == r["emotion"] and "+".join(c.labels["aus"]) == r["aus"]
        assert (c.onset, c.apex, c.offset) == (int(r["onset"]), int(r["apex"]), int(r["offset"]))
        assert probe(c.video).num_frames == int(r["frames"])
    before = (out / "videos" / f"{m.clips[0].clip_id}.mp4").read_bytes()
    assert main(args) == 0  # resume: same options, nothing redrawn
    assert (out / "videos" / f"{m.clips[0].clip_id}.mp4").read_bytes() == before
    assert main([*args[:-2], "0.25", "--quiet"]) == 2  # other options into the same folder
    assert "was made with other options" in capsys.readouterr().err


def test_micro_config_is_checked():
    with pytest.raises(UnmaskError) as e:
        MicroConfig(intensity=0, ambiguous=2).validated()
    assert "intensity must be within" in e.value.render() and "ambiguous must be within" in e.value.render()
    assert MicroConfig(clips=8, ambiguous=0.25).classes_per_subject().count("happiness") == 1
