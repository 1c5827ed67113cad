from pathlib import Path

import pytest

from mitodet.errors import MitodetError
from mitodet.train.config import load_config, override_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_shipped_configs_validate(shared_data, monkeypatch):
    monkeypatch.chdir(ROOT)
    for name in ("tiny", "default-ca-rgb", "default-ca-od", "paper-ca-rgb"):
        cfg = load_config(ROOT / "configs" / f"{name}.yaml", ["data.negatives=[]"])
        assert cfg.data.crops
    assert load_config(ROOT / "configs/default-ca-od.yaml", ["data.negatives=[]"]).augment.protocol == "ca-od"
    assert load_config(ROOT / "configs/paper-ca-rgb.yaml", ["data.negatives=[]"]).model.name == "paper"


def test_overrides_and_leave_one_scanner_out(shared_data, tmp_path):
    crops = shared_data / "midog21_crops"
    p = write(tmp_path, f"data: {{crops: {crops}}}\n")
    cfg = load_config(
        p,
        ["optim.lr=0.003", "model.name=tiny", "data.exclude.scanner=[Aperio CS2, Hamamatsu XR]", "augment.elastic.p=0"],
    )
    assert cfg.optim.lr == 0.003 and cfg.model.name == "tiny" and cfg.augment.elastic.p == 0
    assert cfg.data.exclude == {"scanner": ["Aperio CS2", "Hamamatsu XR"]}
    assert override_config(cfg, ["train.epochs=7"]).train.epochs == 7


@pytest.mark.parametrize(
    "text, sets, msg",
    [
        ("bogus: 1\n", [], "bogus: Extra inputs are not permitted"),
        ("optim: {lr: fast}\n", [], "optim.lr"),
        ("optim: {lrr: 0.1}\n", [], "optim.lrr"),
        ("data: {crops: /no/such/folder}\n", [], "data.crops: path /no/such/folder does not exist"),
        ("data: {tissue: [/no/tiles]}\n", [], "data.tissue[0]"),
        ("model: {name: huge}\n", [], "model.name: unknown model 'huge'"),
        ("a: [unclosed\n", [], "not valid YAML"),
        ("{}\n", [], "no labelled data"),
        ("{}\n", ["optim.lr"], "expected KEY=VALUE"),
    ],
)
def test_bad_config_is_one_line_error(tmp_path, text, sets, msg):
    p = write(tmp_path, text)
    with pytest.raises(MitodetError) as e:
        load_config(p, sets)
    assert msg in str(e.value) and str(e.value).startswith(str(p)) and "\n" not in str(e.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(MitodetError, match="config file not found"):
        load_config(tmp_path / "none.yaml")


def test_bundled_configs_work_outside_the_checkout(cli, shared_data, tmp_path, monkeypatch):
    """#20 item 7: ../shared/data/... in a bundled config means $MITODET_DATA (or --data-root);
    without either, the error names the variable to set."""
    from mitodet.resources import config_path
    from mitodet.train.config import load_config

    monkeypatch.chdir(tmp_path)  # not beside ../shared
    monkeypatch.delenv("MITODET_DATA", raising=False)
    code, _, err = cli("train", "tiny", "--max-minutes", "0.01", "--run-dir", tmp_path / "r")
    assert code == 2 and "set $MITODET_DATA (or --data-root)" in err
    cfg = load_config(config_path("tiny"), data_root=shared_data)
    assert cfg.data.crops == str(shared_data / "midog21_crops")
    monkeypatch.setenv("MITODET_DATA", str(shared_data))
    tissue = load_config(config_path("default-ca-rgb"), check_paths=False).data.tissue  # (it names runs/ too)
    assert tissue[0].startswith(str(shared_data))


def test_a_missing_project_file_says_how_to_make_it_or_do_without(shared_data, tmp_path, monkeypatch):
    """#20 item 7: outside the checkout, default-ca-rgb's mined-negatives table and the fields
    configs' training-state/ files are missing; the line says what to do about each."""
    from mitodet.resources import config_path
    from mitodet.train.config import load_config

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MITODET_DATA", str(shared_data))
    with pytest.raises(MitodetError, match=r"data.negatives\[0\]: .*mitodet mine residual.*--set data.negatives=\[\]"):
        load_config(config_path("default-ca-rgb"))
    cfg = load_config(config_path("default-ca-rgb"), ["data.negatives=[]"])  # and without it, it loads
    assert cfg.data.negatives == []
    with pytest.raises(MitodetError, match="split.file: .*a file of the mitodet checkout: run from its root"):
        load_config(config_path("fields-ca-od"))


def test_every_committed_training_state_resumes_from_the_checkout(shared_data, monkeypatch):
    """`mitodet train --resume training-state/NAME` on another machine: every path its config names
    (split file, mined tables, data) must resolve from the project root, not from the machine that
    saved it (the bundled pair's split.file once named /work/main/runs/gpu/...)."""
    from mitodet.train.atypical_config import load_atypical_config

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MITODET_DATA", str(shared_data))
    configs = sorted((ROOT / "training-state").rglob("config.yaml"))
    assert configs, "no committed training state"
    for path in configs:
        if (path.parent / "training.lock").exists():  # a run in flight here; saved when it ends
            continue
        assert "/work/" not in path.read_text(), f"{path}: a machine-specific absolute path"
        if path.parent.name == "atypical":  # the classifier's own config (split file in data)
            assert Path(load_atypical_config(path).data.split_file).is_file(), path
            continue
        cfg = load_config(path)
        if cfg.split.file is not None:
            assert Path(cfg.split.file).is_file(), path
