"""Sources by name: the registry, MFED's task declaration, `unmask import SOURCE` and its import-mfed alias."""

from __future__ import annotations

import pytest
import yaml

import unmask.data.sources._registry as registry
from test_mfed import SHEET, mapping, videos  # noqa: F401  (videos is a fixture)
from unmask.cli import main
from unmask.data.manifest import Clip, read_manifest, write_manifest
from unmask.data.sources import ImportResult, Source, get_source, list_sources, register_source
from unmask.emotions import EMOTIONS
from unmask.errors import UnmaskError
from unmask.tasks import Task


def test_registry_and_mfed_tasks():
    assert "mfed" in list_sources()
    with pytest.raises(UnmaskError, match="unknown source 'nosuch'; known sources: .*mfed"):
        get_source("nosuch")
    true, disguised = get_source("mfed").tasks
    assert (true.name, true.kind, true.labels, true.column, true.title) == (
        "true", "single", EMOTIONS, "true_emotion", "felt")
    assert (disguised.name, disguised.kind, disguised.labels, disguised.column, disguised.title) == (
        "disguised", "single", EMOTIONS, "disguised_emotion", "shown")
    assert true.normalize("Happy") == "happiness" and disguised.normalize("SAD") == "sadness"


def test_import_mfed_and_its_alias_write_the_same_manifest(tmp_path, videos, capsys):  # noqa: F811
    sheet = tmp_path / "s.csv"
    SHEET.to_csv(sheet, index=False)
    (tmp_path / "map.yaml").write_text(yaml.safe_dump(mapping()))
    common = [str(sheet), "--mapping", str(tmp_path / "map.yaml"), "--videos", str(videos)]
    assert main(["import", "mfed", *common, "--out", str(tmp_path / "a.csv")]) == 0
    assert "wrote 4 clip(s) (1 congruent, flagged)" in capsys.readouterr().out
    assert main(["import-mfed", *common, "--out", str(tmp_path / "b.csv")]) == 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    bad = SHEET.copy()
    bad.loc[1, "Experienced emotion"] = "contempt"
    bad.to_csv(sheet, index=False)
    assert main(["import", "mfed", *common, "--out", str(tmp_path / "c.csv")]) == 2
    assert "column 'Experienced emotion': unknown label 'contempt' for task 'true'" in capsys.readouterr().err
    assert main(["import", "mfed", *common, "--out", str(tmp_path / "c.csv"), "--skip-invalid"]) == 1
    assert "skipped: " in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse: an unknown source is refused with the list of sources
        main(["import", "nosuch", str(sheet), "--out", str(tmp_path / "d.csv")])
    assert "invalid choice: 'nosuch' (choose from" in capsys.readouterr().err


def test_a_registered_source_brings_its_arguments_to_unmask_import(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(registry, "_SOURCES", dict(registry._SOURCES))

    @register_source
    class Toy(Source):
        name = "toy"
        help = "one clip per line of a text file"
        tasks = (Task("emotion", "single", ("neutral", "happy", "sad")),)

        def add_arguments(self, parser):
            parser.add_argument("listing")
            parser.add_argument("--subject", default="s1")

        def run(self, args, out, *, skip_invalid=False):
            clips = [Clip(name, args.subject, tmp_path / f"{name}.mp4", {"emotion": label}, 0, 1, 2)
                     for name, label in (line.split(":") for line in open(args.listing).read().split())]
            return ImportResult(write_manifest(clips, out, self.tasks), clips)

    (tmp_path / "list.txt").write_text("a:happy b:sad c:neutral\n")
    assert "toy" in list_sources()
    assert main(["import", "toy", str(tmp_path / "list.txt"), "--subject", "s7", "--out", str(tmp_path / "m.csv")]) == 0
    assert f"wrote 3 clip(s) to {tmp_path / 'm.csv'}" in capsys.readouterr().out
    manifest = read_manifest(tmp_path / "m.csv", check_files=False)  # read back with the declared task
    assert manifest.tasks == Toy.tasks and [c.subject for c in manifest] == ["s7"] * 3
    assert [c.labels["emotion"] for c in manifest] == ["happy", "sad", "neutral"]
    with pytest.raises(ValueError, match="name of its own"):
        register_source(Toy)
