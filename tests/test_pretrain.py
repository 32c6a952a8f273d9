import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json

import pytest
import torch

from unmask.cli import main
from unmask.data.prepare import PreparedSet
from unmask.errors import UnmaskError
from unmask.models import create_backbone
from unmask.train.pretrain import load_au_frames, pretrain_au


def test_au_frames_pair_each_crop_with_its_frames_intensities(tiny_synth):
    from unmask.data.manifest import read_annotations

    prepared = PreparedSet(tiny_synth[1])
    images, targets, names, subjects = load_au_frames(prepared, 32)
    per_clip = 3 + prepared.config["clip_frames"]
    assert images.shape == (90 * per_clip, 3, 32, 32) and targets.shape == (90 * per_clip, len(names))
    assert {"AU01", "AU04", "AU12"} <= set(names) and sorted(set(subjects)) == ["s01", "s02", "s03"]
    cid = prepared.clip_ids()[0]
    clip = prepared.manifest.by_id()[cid]
    apex = read_annotations(clip.annotations)["aus"][prepared.meta(cid)["frames"]["apex"]]
    assert targets[1].tolist() == pytest.approx([apex[a] for a in names])  # onset, apex, offset, clip...


def test_pretraining_lowers_the_au_error_and_saves_loadable_weights(tiny_synth, tmp_path):
    out = tmp_path / "w" / "tiny_resnet_au.safetensors"
    assert main(["pretrain", str(tiny_synth[1]), "--out", str(out), "--img-size", "32", "--epochs", "3"]) == 0
    meta = json.loads((tmp_path / "w" / "tiny_resnet_au.safetensors.json").read_text())
    mse = meta["mse_per_epoch"]
    assert len(mse) == 3 and mse[-1] < mse[0] and mse[-1] < meta["target_variance"]
    loaded = create_backbone("tiny_resnet", weights=str(out), img_size=32)
    from safetensors.torch import load_file

    saved = load_file(str(out))
    state = loaded.model.state_dict()
    assert set(saved) == set(state)
    for k, v in saved.items():
        assert torch.equal(state[k], v), k
    random = create_backbone("tiny_resnet", weights=None, img_size=32)
    assert not torch.equal(random.model.conv1.weight, loaded.model.conv1.weight)


def test_a_set_without_annotations_is_a_clear_error(tmp_path, tiny_synth):
    import shutil
    from dataclasses import replace

    from unmask.data.manifest import read_manifest, write_manifest

    copy = tmp_path / "prepared"
    shutil.copytree(tiny_synth[1], copy, ignore=shutil.ignore_patterns("features"))
    m = read_manifest(copy / "manifest.csv", check_files=False)
    write_manifest([replace(c, annotations=None) for c in m.clips], copy / "manifest.csv", m.tasks)
    with pytest.raises(UnmaskError, match="no annotations file"):
        pretrain_au(copy, tmp_path / "x.safetensors", img_size=32, epochs=1, progress=False)


def test_pretraining_fixes_its_thread_count_records_it_and_restores_the_callers(tiny_synth, tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = pretrain_au(tiny_synth[1], tmp_path / "one.safetensors", img_size=32, epochs=1, progress=False,
                          threads=1)
        assert torch.get_num_threads() == 2  # the caller's setting is back
        assert json.loads((tmp_path / "one.safetensors.json").read_text())["torch_threads"] == 1
        assert out.is_file()
    finally:
        torch.set_num_threads(before)
