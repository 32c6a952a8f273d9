"""MFED adapter: a CASME-II-style sheet (xlsx and csv) + a column mapping + real small videos -> manifest."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from unmask.cli import main
from unmask.data.manifest import read_manifest, validate_manifest
from unmask.data.sources.mfed import import_mfed, load_mapping
from unmask.errors import UnmaskError

# configs/ is a link to src/unmask/configs; the mapping sits in a subfolder so it is not taken for an
# experiment config.
EXAMPLE = Path(__file__).resolve().parents[1] / "src/unmask/configs/sources/mfed_mapping.example.yaml"

SHEET = pd.DataFrame({
    "Subject": ["01", "01", "02", "02"],
    "Filename": ["EP02_01f", "EP03_02", "EP02_01f", "EP05_03"],
    "OnsetFrame": [0, 2, 1, 0],
    "ApexFrame": [3, 5, 4, 2],
    "OffsetFrame": [8, 9, 9, 5],
    "Experienced emotion": ["happy", "Sadness", "DISGUST", "fear"],
    "Required expression": ["sad", "happiness", "Happy", "fear"],
    "Notes": ["", "", "", "congruent control"],
})


@pytest.fixture
def videos(tmp_path, make_video, draw_square):
    root = tmp_path / "videos"
    frames = [draw_square((10 + i, 10, 30, 30), size=(64, 64)) for i in range(10)]
    for subject, name in zip(SHEET.Subject, SHEET.Filename):
        make_video(root / f"sub{subject}" / f"{name}.mp4", frames)
    return root


def mapping(**extra):
    return {"columns": {"subject": "Subject", "filename": "Filename", "true_emotion": "Experienced emotion",
                        "disguised_emotion": "Required expression", "onset": "OnsetFrame", "apex": "ApexFrame",
                        "offset": "OffsetFrame"}, **extra}


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_import_sheet(tmp_path, videos, suffix):
    sheet = tmp_path / f"casme{suffix}"
    SHEET.to_excel(sheet, index=False) if suffix == ".xlsx" else SHEET.to_csv(sheet, index=False)
    out = tmp_path / "out" / "manifest.csv"
    result = import_mfed(sheet, mapping(), videos, out)
    assert result.out == out and len(result.clips) == 4 and result.congruent == 1
    manifest, problems = validate_manifest(out)  # the emitted manifest is valid, videos included
    assert problems == []
    assert [c.clip_id for c in manifest] == ["01_EP02_01f", "01_EP03_02", "02_EP02_01f", "02_EP05_03"]
    a, b, c, d = manifest.clips
    assert (a.labels["true"], a.labels["disguised"], a.onset, a.apex, a.offset) == ("happiness", "sadness", 0, 3, 8)
    assert (c.labels["true"], c.labels["disguised"], c.subject) == ("disgust", "happiness", "02")
    # The same file name for two subjects: each row gets its own subject's video.
    assert a.video.resolve() == (videos / "sub01/EP02_01f.mp4").resolve()
    assert c.video.resolve() == (videos / "sub02/EP02_01f.mp4").resolve()
    assert d.congruent and [x.clip_id for x in manifest.masked()] == ["01_EP02_01f", "01_EP03_02", "02_EP02_01f"]
    assert out.read_text().splitlines()[4].endswith(",1")  # the congruent flag is written


def test_video_pattern_and_frame_base(tmp_path, videos):
    sheet = tmp_path / "s.csv"
    one_based = SHEET.assign(OnsetFrame=SHEET.OnsetFrame + 1, ApexFrame=SHEET.ApexFrame + 1,
                             OffsetFrame=SHEET.OffsetFrame + 1, Subject=[1, 1, 2, 2])
    one_based.to_csv(sheet, index=False)
    m = mapping(video="sub{subject:02d}/{filename}.*", frame_base=1, clip_id="s{subject}-{filename}")
    result = import_mfed(sheet, m, videos, tmp_path / "m.csv")
    assert [(c.clip_id, c.onset, c.offset) for c in result.clips][:2] == [("s1-EP02_01f", 0, 8), ("s1-EP03_02", 2, 9)]
    assert result.clips[2].video.name == "EP02_01f.mp4" and result.clips[2].video.parent.name == "sub02"


def test_every_problem_at_once_with_sheet_rows(tmp_path, videos):
    bad = SHEET.copy()
    bad.loc[1, "Experienced emotion"] = "contempt"
    bad.loc[2, "Filename"] = "EP99_99"
    bad.loc[3, "ApexFrame"] = 7  # apex after offset
    sheet = tmp_path / "bad.xlsx"
    bad.to_excel(sheet, index=False)
    with pytest.raises(UnmaskError) as e:
        import_mfed(sheet, mapping(), videos, tmp_path / "m.csv")
    problems = e.value.problems
    assert len(problems) == 3
    assert problems[0].startswith(f"{sheet}:3: column 'Experienced emotion'") and "contempt" in problems[0]
    assert problems[1].startswith(f"{sheet}:4: column 'Filename'") and "EP99_99" in problems[1]
    assert problems[2].startswith(f"{sheet}:5: column 'ApexFrame'")
    assert not (tmp_path / "m.csv").exists()  # nothing written
    result = import_mfed(sheet, mapping(), videos, tmp_path / "m.csv", skip_invalid=True)
    assert len(result.clips) == 1 and len(result.problems) == 3 and read_manifest(tmp_path / "m.csv")


def test_mapping_errors(tmp_path, videos):
    sheet = tmp_path / "s.csv"
    SHEET.to_csv(sheet, index=False)
    m = mapping()
    m["columns"]["onset"] = "Onset"
    m["columns"]["apex"] = "Apex"
    with pytest.raises(UnmaskError, match="unknown column") as e:
        import_mfed(sheet, m, videos)
    assert len(e.value.problems) == 2 and "'Onset'" in e.value.problems[0]
    with pytest.raises(UnmaskError, match="bad column mapping") as e:
        load_mapping({"columns": {k: v for k, v in mapping()["columns"].items() if k != "offset"}})
    assert e.value.problems == ["columns: missing 'offset'"]
    with pytest.raises(UnmaskError, match="unknown key"):
        load_mapping({**mapping(), "sheets": 1})
    with pytest.raises(UnmaskError, match="video pattern"):
        import_mfed(sheet, mapping(video="{subjet}/{filename}.mp4"), videos)


def test_example_mapping_and_cli(tmp_path, videos, capsys):
    assert load_mapping(EXAMPLE).columns["true_emotion"] == "Experienced emotion"
    sheet = tmp_path / "casme.xlsx"
    with pd.ExcelWriter(sheet) as w:  # the data on a second sheet, picked by name
        pd.DataFrame({"x": [1]}).to_excel(w, sheet_name="readme", index=False)
        SHEET.to_excel(w, sheet_name="clips", index=False)
    mapping_file = tmp_path / "map.yaml"
    mapping_file.write_text(yaml.safe_dump(mapping(sheet="clips")))
    out = tmp_path / "manifest.csv"
    assert main(["import-mfed", str(sheet), "--mapping", str(mapping_file), "--videos", str(videos),
                 "--out", str(out)]) == 0
    assert "wrote 4 clip(s) (1 congruent, flagged)" in capsys.readouterr().out
    assert main(["validate", str(out)]) == 0
    assert main(["import-mfed", str(sheet), "--mapping", str(tmp_path / "nope.yaml"), "--videos", str(videos),
                 "--out", str(out)]) == 2
    assert "mapping file not found" in capsys.readouterr().err
