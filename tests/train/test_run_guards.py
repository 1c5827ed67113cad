"""What training must never do to a user's run: replace it silently, leave it unresumable, accept
a setting that trains to NaN; and the patience rule that ends a run."""

from __future__ import annotations

import pytest

from mitodet.errors import MitodetError
from mitodet.train.config import config_from_dict
from mitodet.train.run import _validations_since_best, train
from tests.conftest import one_error_line
from tests.train.conftest import tiny_raw


@pytest.fixture(scope="module")
def finished(small_crops, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "done"
    train(config_from_dict(tiny_raw(small_crops, train={"epochs": 1, "steps_per_epoch": 2})), run)
    return run


@pytest.mark.parametrize("value", ["1e999", "-1e999", "nan", ".inf"])
def test_infinite_or_nan_settings_are_refused(small_crops, value):
    raw = tiny_raw(small_crops)
    raw["optim"]["lr"] = float(value) if value != ".inf" else float("inf")
    with pytest.raises(MitodetError, match="optim.lr"):
        config_from_dict(raw)


def test_run_dir_holding_a_run_is_refused_without_force(cli, finished, small_crops, tmp_path):
    cfg = tmp_path / "t.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump(tiny_raw(small_crops, train={"epochs": 1, "steps_per_epoch": 2})))
    before = {p.name: p.read_bytes() for p in finished.iterdir() if p.is_file()}
    code, _, err = cli("train", cfg, "--run-dir", finished, "--quiet")
    line = one_error_line(code, err, "holds a run already")
    assert "--resume" in line and "--force" in line
    assert {p.name: p.read_bytes() for p in finished.iterdir() if p.is_file()} == before


def test_an_interrupted_run_leaves_no_training_marker(small_crops, tmp_path):
    """Ctrl-C (or SIGTERM, handled as Ctrl-C) mid-epoch: the run stops, resumable, and takes its
    training.lock with it, so the saved state carries no stale marker to another checkout."""
    run = tmp_path / "r"
    seen = []

    def stop(step, steps, loss, rate):
        seen.append((run / "training.lock").is_file())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config_from_dict(tiny_raw(small_crops, train={"epochs": 2, "steps_per_epoch": 2})), run, on_step=stop)
    assert seen == [True] and not (run / "training.lock").exists()


def test_resume_with_a_clashing_override_leaves_the_config(cli, finished):
    before = (finished / "config.yaml").read_bytes()
    code, _, err = cli("train", "--resume", finished, "--set", "model.name=fast", "--quiet")
    one_error_line(code, err, "cannot change on --resume")
    assert (finished / "config.yaml").read_bytes() == before  # still resumable as it was


def test_patience_counts_validations_after_the_best():
    rows = [{"val_f1_mean": v, "val_loss": 1.0, "train_loss": 1.0} for v in (0.3, 0.5, 0.4, 0.45)]
    rows.insert(1, {"val_loss": 1.0, "train_loss": 1.0})  # an epoch without detection validation
    assert _validations_since_best(rows, "f1_mean") == 2
    assert _validations_since_best(rows[:3], "f1_mean") == 0


def test_model_init_of_another_width_is_refused_unless_widened(tmp_path):
    """A 'fast' checkpoint starts a 'medium' run only with model.widen: true (exactly its logits)."""
    import torch

    from mitodet.errors import MitodetError
    from mitodet.model import create_model, save_checkpoint
    from mitodet.train.config import Config
    from mitodet.train.run import _init_model

    torch.manual_seed(0)
    fast = create_model("fast").eval()
    init = save_checkpoint(tmp_path / "fast.pt", fast)
    cfg = Config.model_validate({"model": {"name": "medium", "init": str(init)}})
    with pytest.raises(MitodetError, match="model.widen: true starts a wider network"):
        _init_model(cfg, resume=False)
    cfg = Config.model_validate({"model": {"name": "medium", "init": str(init), "widen": True}})
    medium = _init_model(cfg, resume=False).eval()
    x = torch.rand(1, 3, 80, 80)
    with torch.no_grad():
        assert torch.allclose(fast(x), medium(x), atol=1e-5)
