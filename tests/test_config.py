import pytest

from unmask.cli import main
from unmask.config import Config, load_config, packaged_configs, save_config
from unmask.errors import UnmaskError


def test_defaults_yaml_and_overrides_merge_in_order(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("loss: {args: {dsid: {alpha: 0.3, beta: 2}}}\noptim: {epochs: 7}\n")
    cfg = load_config(f, ["loss.args.dsid.alpha=0.9", "optim.lr=1e-3", "protocol.folds=[s01,s03]", "model.weights=null"])
    assert cfg.loss.args["dsid"] == {"alpha": 0.9, "beta": 2}  # override beats YAML, merged key by key
    assert cfg.optim.epochs == 7 and cfg.optim.lr == 1e-3
    assert cfg.protocol.folds == ["s01", "s03"]
    assert cfg.model.weights is None
    assert cfg.optim.batch_size == Config().optim.batch_size  # untouched default


@pytest.mark.parametrize("override, message", [
    ("loss.alpa=1", "unknown config key 'loss.alpa'"),
    ("optim.epochs=ten", "'optim.epochs': expected an integer"),
    ("augment.hflip=maybe", "'augment.hflip': expected true or false"),
    ("loss.args.dsid.alpah=1", "unknown argument\\(s\\) for loss 'dsid': alpah"),
    ("model.args.dsid.adapter_dims=8", "unknown argument\\(s\\) for model 'dsid' with backbone 'clip_vit_b16': adapter_dims"),
    ("model.args.single_stream.branch_dim=8", "for model 'single_stream'.*branch_dim"),
    ("model.args.dsid.tasks=[a]", "set by the run"),
    ("model.name=dsidd", "unknown model 'dsidd'"),
    ("loss.name=hsci", "unknown loss 'hsci'"),
    ("optim.name=lamb", "'optim.name': 'lamb' is not one of"),
    ("nosuchsection.x=1", "unknown config key 'nosuchsection'"),
    ("optim.batch_size=0", "'optim.batch_size' must be >= 1"),
    ("alpha", "not of the form key=value"),
])
def test_bad_keys_and_types_are_errors(override, message):
    with pytest.raises(UnmaskError, match=message):
        load_config(None, [override])


def test_saved_config_round_trips(tmp_path):
    cfg = load_config("dsid_paper", ["loss.args.dsid.alpha=0.7"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again.to_dict() == cfg.to_dict()


def test_paper_config_holds_the_papers_settings():
    cfg = load_config("dsid_paper")
    assert (cfg.model.backbone, cfg.data.paradigm, cfg.data.masked_only) == ("clip_vit_b16", "apex", True)
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.batch_size) == (5e-4, 5e-4, 32)
    assert (cfg.optim.epochs, cfg.optim.patience, cfg.model.args["dsid"]["dropout"]) == (200, 50, 0.5)
    assert (cfg.loss.args["dsid"]["alpha"], cfg.loss.args["dsid"]["beta"], cfg.augment.rotation) == (0.5, 1.0, 10.0)
    assert cfg.augment.normalization == "imagenet" and cfg.protocol.name == "loso"
    assert cfg.protocol.validation == "subjects"


def test_every_packaged_config_loads():
    assert {"dsid_paper", "dsid_synth"} <= set(packaged_configs())
    for name in packaged_configs():
        load_config(name)


def test_cli_reports_bad_config_without_traceback(tmp_path, capsys):
    rc = main(["train", "--config", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc != 0 and "config file not found" in err and "Traceback" not in err
    rc = main(["train", "loss.alpa=1", "--out", str(tmp_path / "run")])
    assert rc != 0 and "unknown config key 'loss.alpa'" in capsys.readouterr().err
