"""Micro-expression sources: CASME II, SAMM, SMIC and the MEGC2019 composite from their real layouts."""

from __future__ import annotations

import csv

import pytest

from micro_fixtures import CASME2_ROWS, CASME3_ROWS, write_casme2, write_casme3, write_frames, write_samm, write_smic
from unmask.cli import main
from unmask.data.datasets import label_tensor
from unmask.data.manifest import read_manifest
from unmask.data.sources._micro import parse_au_set, parse_aus
from unmask.data.video import frame_folder, probe, read_frames
from unmask.errors import UnmaskError


def test_au_strings_of_the_real_sheets():
    assert parse_aus("R12")[0] == {12} and "side prefix dropped" in parse_aus("R12")[1]
    assert parse_aus("L1+2")[0] == {1, 2}
    assert parse_aus("4+7 or 4+5")[0] == {4, 7}
    assert parse_aus("4+7 or 4+5", "union")[0] == {4, 5, 7}
    assert parse_aus(" AU12B ")[0] == {12}
    assert parse_aus("/")[0] == set() and parse_aus("")[0] == set()
    aus, rules = parse_aus("4+blink")
    assert aus == {4} and "non-AU token 'blink' dropped" in rules
    assert parse_au_set("casme2") == (1, 2, 4, 7, 12, 14, 15, 17) and parse_au_set("12,4") == (4, 12)
    with pytest.raises(UnmaskError, match="AU set"):
        parse_au_set("brows")


def test_frame_folder_reads_as_a_video_in_number_order(tmp_path):
    folder = write_frames(tmp_path / "clip", [9, 10, 8, 100], shift=3)
    assert [p.name for p in frame_folder(folder)] == ["img8.jpg", "img9.jpg", "img10.jpg", "img100.jpg"]
    assert probe(folder).num_frames == 4
    frames = read_frames(folder, [0, 3])
    assert frames[0].shape == (48, 48, 3)
    with pytest.raises(UnmaskError, match="frame 4 beyond the folder's length"):
        read_frames(folder, [4])


def test_casme2_sheet_quirks_are_fixed_and_reported_row_by_row(tmp_path, capsys):
    sheet, frames = write_casme2(tmp_path)
    out = tmp_path / "casme2.csv"
    assert main(["import", "casme2", str(sheet), "--frames", str(frames), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "wrote 5 clip(s) of 3 subject(s)" in said and "1 x missing apex -> middle frame" in said
    assert "1 row(s) excluded: casme2 emotion 'fear'" in said
    m = read_manifest(out)
    clips = m.by_id()
    assert [t.name for t in m.tasks] == ["emotion", "aus"]
    c = clips["sub01_EP02_01f"]
    assert (c.onset, c.apex, c.offset) == (0, 4, 12)  # img46..img58: sheet numbers -> positions
    assert c.labels == {"emotion": "happiness", "aus": ("AU12",)}
    c = clips["sub01_EP03_02"]  # missing apex '/' -> the middle frame
    assert (c.onset, c.apex, c.offset) == (0, 5, 10) and c.labels["aus"] == ("AU01", "AU02")
    c = clips["sub02_EP01_01"]  # offset 0 -> the last image; '4+7 or 4+5' -> 4+7
    assert c.offset == 6 and c.labels["aus"] == ("AU04", "AU07")
    assert clips["sub03_EP06_01"].labels == {"emotion": "others", "aus": ("AU04",)}  # AU25 not in the set
    assert c.video.is_dir() and probe(c.video).num_frames == 7
    with open(tmp_path / "casme2.fixes.csv", newline="") as f:
        fixes = list(csv.DictReader(f))
    rules = {(r["row"], r["rule"]) for r in fixes}
    assert ("3", "missing apex -> middle frame") in rules and ("4", "offset 0 -> last image") in rules
    assert ("2", "side prefix dropped") in rules and ("6", "AUs outside the set dropped") in rules
    assert ("2", "integer subject -> folder name") in rules and ("3", "spaces stripped") in rules
    # a configurable AU set, and the 'empty' apex policy
    assert main(["import", "casme2", str(sheet), "--frames", str(frames), "--aus", "4,12,25",
                 "--missing-apex", "empty", "--out", str(tmp_path / "b.csv")]) == 0
    b = read_manifest(tmp_path / "b.csv").by_id()
    assert b["sub03_EP06_01"].labels["aus"] == ("AU04", "AU25") and b["sub01_EP03_02"].apex is None


def test_casme2_bad_rows_are_named_and_skippable(tmp_path, capsys):
    rows = CASME2_ROWS + [(3, "EP07_01", 30, 99, 36, "4", "surprise"), (4, "EP09_09", 1, 2, 3, "4", "disgust")]
    sheet, frames = write_casme2(tmp_path, rows, suffix=".csv")
    args = ["import", "casme2", str(sheet), "--frames", str(frames), "--out", str(tmp_path / "m.csv")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert ":8: column 'apex': frame 99 is not among the folder's images (numbers 30-36)" in err
    assert ":9: column 'filename': no frame folder named 'EP09_09'" in err
    assert "Traceback" not in err
    assert main(args + ["--skip-invalid"]) == 1
    assert len(read_manifest(tmp_path / "m.csv")) == 5  # 6 good rows, one of them fear (excluded)


def test_samm_header_below_title_rows_and_integer_subjects(tmp_path, capsys):
    sheet, frames = write_samm(tmp_path)
    assert main(["import", "samm", str(sheet), "--frames", str(frames), "--out", str(tmp_path / "s.csv")]) == 0
    m = read_manifest(tmp_path / "s.csv").by_id()
    assert sorted(m) == ["006_006_1_2", "006_006_1_5", "007_007_3_1"]
    c = m["006_006_1_2"]  # frames numbered every other: 5588 is the 14th image
    assert (c.onset, c.apex, c.offset, c.subject) == (0, 13, 21, "006")
    assert m["006_006_1_5"].labels == {"emotion": "happiness", "aus": ("AU12",)}
    assert m["007_007_3_1"].apex == 10 and m["007_007_3_1"].labels["emotion"] == "other"


def test_smic_folders_are_the_labels_and_megc2019_maps_three_datasets(tmp_path, capsys):
    tree = write_smic(tmp_path)
    assert main(["import", "smic", str(tree), "--out", str(tmp_path / "smic.csv")]) == 0
    smic = read_manifest(tmp_path / "smic.csv")
    assert [t.name for t in smic.tasks] == ["emotion"] and len(smic) == 3  # non_micro left out
    c = smic.by_id()["s1_ne_01"]
    assert (c.onset, c.apex, c.offset, c.subject, c.labels["emotion"]) == (0, 5, 11, "s1", "negative")

    cs, cf = write_casme2(tmp_path / "c")
    ss, sf = write_samm(tmp_path / "s")
    out = tmp_path / "megc.csv"
    assert main(["import", "megc2019", "--casme2-sheet", str(cs), "--casme2-frames", str(cf), "--samm-sheet",
                 str(ss), "--samm-frames", str(sf), "--smic", str(tree), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    m = read_manifest(out)
    by = m.by_id()
    # CASME II: happiness->positive, disgust/repression->negative, others and fear excluded; SAMM: Other excluded
    assert by["casme2_sub01_EP02_01f"].labels["emotion"] == "positive"
    assert by["casme2_sub02_EP01_01"].labels["emotion"] == "negative"
    assert by["samm_006_006_1_2"].labels["emotion"] == "negative"
    assert "casme2_sub03_EP06_01" not in by and "samm_007_007_3_1" not in by
    assert len(m) == 4 + 2 + 3 and "excluded" in said
    assert {c.subject for c in m} >= {"casme2_sub01", "samm_006", "smic_s1"}
    # SMIC has no AUs: its cells are 'not annotated', so its AU targets are NaN (masked), the others 0/1
    aus = next(t for t in m.tasks if t.name == "aus")
    assert aus.labels == ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15",
                          "AU17")
    targets = label_tensor(aus, [c.labels["aus"] for c in m])
    smic_rows = [i for i, c in enumerate(m) if c.subject.startswith("smic_")]
    assert bool(targets[smic_rows].isnan().all()) and not bool(targets[:4].isnan().any())
    assert float(targets[0, aus.labels.index("AU12")]) == 1.0


def test_megc2019_needs_a_part_and_pairs_its_arguments(tmp_path, capsys):
    assert main(["import", "megc2019", "--out", str(tmp_path / "m.csv")]) == 2
    assert "give at least one of" in capsys.readouterr().err
    assert main(["import", "megc2019", "--casme2-sheet", "x.xlsx", "--out", str(tmp_path / "m.csv")]) == 2
    assert "--casme2-sheet and --casme2-frames go together" in capsys.readouterr().err


def test_casme3_part_a_clip_release_and_full_sequences(tmp_path, capsys):
    sheet, frames = write_casme3(tmp_path, full={("spNO.2", "c")})
    out = tmp_path / "casme3.csv"
    assert main(["import", "casme3", str(sheet), "--frames", str(frames), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "wrote 5 clip(s) of 3 subject(s)" in said
    m = read_manifest(out)
    by = m.by_id()
    assert m.tasks[0].labels == ("happy", "disgust", "fear", "anger", "sad", "surprise", "others")
    c = by["spNO.1_a"]  # the clip release: frames 116..126 are the whole folder
    assert (c.onset, c.apex, c.offset) == (0, 4, 10) and c.labels == {"emotion": "happy", "aus": ("AU12",)}
    assert c.video.name == "spNO.1_a_116"
    assert by["spNO.1_b"].labels["emotion"] == "disgust"  # "Disgust " -> disgust, reported
    c = by["spNO.2_c"]  # the full sequence (295..314 in color/): the row's onset..offset cut from it
    assert c.video.name == "color" and (c.onset, c.apex, c.offset) == (5, 9, 14)
    with open(tmp_path / "casme3.fixes.csv", newline="") as f:
        rules = {r["rule"] for r in csv.DictReader(f)}
    assert "spaces stripped" in rules and "side prefix dropped" in rules
    # the 4- and 3-class groupings
    assert main(["import", "casme3", str(sheet), "--frames", str(frames), "--classes", "4",
                 "--out", str(tmp_path / "c4.csv")]) == 0
    m4 = read_manifest(tmp_path / "c4.csv")
    assert m4.tasks[0].labels == ("positive", "negative", "surprise", "others")
    assert {c.clip_id: c.labels["emotion"] for c in m4} == {"spNO.1_a": "positive", "spNO.1_b": "negative",
                                                          "spNO.2_a": "surprise", "spNO.2_c": "others",
                                                          "spNO.3_d": "negative"}
    assert main(["import", "casme3", str(sheet), "--frames", str(frames), "--classes", "3",
                 "--out", str(tmp_path / "c3.csv")]) == 0
    assert "1 row(s) excluded: casme3 emotion 'others'" in capsys.readouterr().out
    assert len(read_manifest(tmp_path / "c3.csv")) == 4


def test_casme3_missing_clip_folder_is_named(tmp_path, capsys):
    rows = [*CASME3_ROWS, ("spNO.9", "z", 1, 2, 3, "4", "1", "happy")]
    sheet, frames = write_casme3(tmp_path, rows=rows[:-1])
    write_casme3(tmp_path / "other", rows=rows)  # a sheet naming a clip the frames lack
    sheet = tmp_path / "other" / sheet.name
    assert main(["import", "casme3", str(sheet), "--frames", str(frames), "--out", str(tmp_path / "m.csv")]) == 2
    err = capsys.readouterr().err
    assert f"{sheet}:7: column 'filename': no frame folder 'spNO.9_z_1'" in err and "Traceback" not in err
