"""reproduce --quick: the AU-pretrained tiny backbones (upstream of every quick table) are the same weights
whether pretrained in this process (--jobs 1) or in worker processes (--jobs 2), whatever the cores.

Before quick.yaml fixed ``pretrain.threads``, a worker took cores // jobs torch threads and the main process
torch's default, and tiny_resnet's weights differed by up to 1.1 after two epochs (measured with
1 vs 2 threads), which is where ``reproduce ablation --quick`` with and without --jobs parted."""

from __future__ import annotations

import json

import torch

from unmask.models.weights import read_checkpoint


def test_pretrained_weights_do_not_depend_on_jobs(tmp_path, monkeypatch):
    import unmask.experiments.quick as quick
    from unmask.experiments.tables import read_settings

    def tiny(name):  # 2 subjects of small video at 32 px, one epoch: the smallest run that still trains
        s = read_settings(name)
        if name == "quick":
            s["synth"] = {"subjects": 2, "width": 96, "height": 72, "workers": 2}
            s["prepare"] = {"size": 32, "detector": "annotated"}
            s["pretrain"] = {**s["pretrain"], "subjects": 2, "epochs": 1}
        return s

    monkeypatch.setattr(quick, "read_settings", tiny)
    # a main process with more threads than the setting: what made --jobs 1 differ from --jobs 2
    original = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        weights = {}
        for jobs in (1, 2):
            needed = {bb: {"path": str(tmp_path / f"jobs{jobs}" / f"{bb}_au{quick.weights_suffix(bb)}"),
                           "img_size": 32} for bb in ("tiny_resnet", "tiny_vit")}
            assert sorted(quick.quick_pretrain(tmp_path / "out", needed, jobs=jobs, progress=False)) == sorted(needed)
            weights[jobs] = {bb: read_checkpoint(want["path"])[0] for bb, want in needed.items()}
            for want in needed.values():
                assert json.loads(open(f"{want['path']}.json").read())["torch_threads"] == 1
        assert torch.get_num_threads() == 2  # the main process got its own setting back
    finally:
        torch.set_num_threads(original)
    for bb, state in weights[1].items():
        assert state.keys() == weights[2][bb].keys()
        for key, value in state.items():
            assert torch.equal(value, weights[2][bb][key]), (bb, key)
