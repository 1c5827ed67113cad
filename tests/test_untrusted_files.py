"""No file a user may receive runs code (issue 12, item 1).

A pickle whose ``__reduce__`` writes a marker file is planted on every path that loads a torch
file: detect --model (torch and onnx backends, alone or in a pair), train --resume (last.pt,
whole or with the object hidden in its RNG state), model.init, mine hard, calibrate (run and
--checkpoint), model export / summary / check. Each must refuse it in one line naming the file,
and the marker must not exist. A control proves the pickle does run code when unpickled freely.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import torch

from mitodet.model.checkpoint import safe_load
from mitodet.train.config import config_from_dict, dump_config
from mitodet.train.run import train
from tests.conftest import ROOT, need, one_error_line
from tests.train.conftest import make_small_crops, tiny_raw

BUNDLED = ROOT / "mitodet" / "weights" / "default-ca-rgb.pt"


class Evil:
    """Unpickling this object creates the file ``marker``: code from a file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant(path: Path, marker: Path, where: str = "whole") -> Path:
    if where == "whole":
        torch.save(Evil(marker), path)
    elif where == "checkpoint":  # a valid-looking checkpoint with the object in its metadata
        payload = torch.load(BUNDLED, weights_only=True)
        payload["meta"]["note"] = Evil(marker)
        torch.save(payload, path)
    elif where == "state":  # a real last.pt with the object deep in its RNG state
        state = torch.load(path, weights_only=True)
        state["rng"]["python"]["gauss"] = Evil(marker)
        torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def tiny_run(shared_data, tmp_path_factory) -> Path:
    """A real finished training run (tiny model, a few real crops): config, split, metrics, best/last.pt."""
    d = tmp_path_factory.mktemp("untrusted")
    crops = make_small_crops(shared_data, d / "crops", 10)
    cfg = config_from_dict(tiny_raw(crops, train={"epochs": 1, "steps_per_epoch": 2}, val={"negatives": 60}))
    summary = train(cfg, d / "run")
    (d / "tiny.yaml").write_text(dump_config(cfg))
    return summary.run_dir


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


def test_the_planted_pickle_does_run_code_when_loaded_freely(tmp_path):
    marker = tmp_path / "MARKER"
    torch.load(plant(tmp_path / "evil.pt", marker), weights_only=False)
    assert marker.exists()  # the control: the payload is live, so the refusals below mean something


@pytest.mark.parametrize(
    "args",
    [
        ["detect", "{patch}", "--mpp", "0.25", "--out", "{tmp}/out", "--model", "{evil}"],
        ["detect", "{patch}", "--mpp", "0.25", "--out", "{tmp}/out", "--model", "{bundled}", "--model", "{evil}"],
        ["detect", "{patch}", "--mpp", "0.25", "--out", "{tmp}/out", "--backend", "onnx", "--model", "{evil}"],
        ["model", "export", "{evil}", "--onnx", "{tmp}/m.onnx"],
        ["model", "summary", "{evil}"],
        ["model", "check", "{evil}", "--image", "{patch}"],
    ],
    ids=["detect", "detect-pair", "detect-onnx", "export", "summary", "check"],
)
@pytest.mark.parametrize("where", ["whole", "checkpoint"])
def test_model_files_never_run_code(cli, shared_data, tmp_path, args, where):
    marker = tmp_path / "MARKER"
    evil = plant(tmp_path / "evil.pt", marker, where)
    patch = need(shared_data / "icpr2012_patches" / "images" / "A00_01_0.jpg")
    values = {"tmp": tmp_path, "evil": evil, "patch": patch, "bundled": BUNDLED}
    code, out, err = cli(*[a.format(**values) for a in args])
    one_error_line(code, err, "evil.pt", "refused")
    assert not marker.exists()
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("where", ["whole", "state"])
def test_train_resume_never_runs_code_from_last_pt(cli, run_copy, tmp_path, where):
    marker = tmp_path / "MARKER"
    plant(run_copy / "last.pt", marker, where)
    code, out, err = cli("train", "--resume", run_copy, "--quiet")
    one_error_line(code, err, "last.pt", "refused")
    assert not marker.exists()


def test_model_init_never_runs_code(cli, tiny_run, tmp_path):
    marker = tmp_path / "MARKER"
    evil = plant(tmp_path / "evil.pt", marker)
    config = tiny_run.parent / "tiny.yaml"
    code, out, err = cli("train", config, "--set", f"model.init={evil}", "--run-dir", tmp_path / "r", "--quiet")
    one_error_line(code, err, "evil.pt", "refused")
    assert not marker.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["mine", "hard", "{run}", "--rounds", "1"],
        ["calibrate", "{run}"],
        ["calibrate", "{run}", "--checkpoint", "{evil}"],
    ],
    ids=["mine-hard", "calibrate", "calibrate-checkpoint"],
)
def test_run_folder_checkpoints_never_run_code(cli, run_copy, tmp_path, args):
    marker = tmp_path / "MARKER"
    plant(run_copy / "best.pt", marker)
    evil = plant(tmp_path / "evil.pt", marker)
    code, out, err = cli(*[a.format(run=run_copy, evil=evil) for a in args])
    one_error_line(code, err, "refused")
    assert not marker.exists()


def test_safe_load_reads_real_files_and_refuses_objects(tiny_run, tmp_path):
    assert safe_load(BUNDLED)["format"] == "mitodet-model/1"
    assert safe_load(tiny_run / "last.pt", "training state")["epoch"] >= 0
    from mitodet.errors import MitodetError

    with pytest.raises(MitodetError, match="refused"):
        safe_load(plant(tmp_path / "e.pt", tmp_path / "MARKER"))
    assert not (tmp_path / "MARKER").exists()


def test_torch_load_only_in_safe_load_and_with_weights_only():
    """``git grep torch.load``: one call in the package, weights_only=True, inside safe_load."""
    calls = []
    for path in (ROOT / "mitodet").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                    kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
                    calls.append((path.relative_to(ROOT).as_posix(), fn.name, kw.get("weights_only")))
    assert calls == [("mitodet/model/checkpoint.py", "safe_load", "True")]
    assert "weights_only=False" not in "".join(p.read_text() for p in (ROOT / "mitodet").rglob("*.py"))
