"""What a user gets from ``pip install .`` and a fresh checkout (issue 12, item 10): the configs
ship and can be named, optional extras are named when missing, the README's preview works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mitodet.errors import MitodetError
from mitodet.resources import CONFIGS, bundled_configs, config_path
from tests.conftest import ROOT, one_error_line


def test_bundled_config_names(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # away from the checkout's configs/: only bundled names can resolve
    names = bundled_configs()
    assert {"default-ca-rgb", "default-ca-od", "tiny"} <= set(names)
    assert config_path("tiny") == names["tiny"] == CONFIGS / "tiny.yaml"
    assert config_path("tiny.yaml") == config_path("configs/tiny.yaml") == names["tiny"]
    assert (CONFIGS / "tiny.yaml").read_bytes() == (ROOT / "configs" / "tiny.yaml").read_bytes()
    with pytest.raises(MitodetError, match="bundled configs: .*default-ca-rgb"):
        config_path("banana")
    with pytest.raises(MitodetError, match="not found"):
        config_path("elsewhere/tiny.yaml")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``pip install . --target`` (non-editable): the package as a user installs it."""
    target = tmp_path_factory.mktemp("site")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "--target",
            str(target),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"pip cannot build here: {r.stderr[-300:]}")
    return target


def test_installed_package_ships_configs_and_finds_them_by_name(installed, tmp_path):
    for need in ("configs/default-ca-rgb.yaml", "weights/default-ca-rgb.pt", "examples/README.md", "__main__.py"):
        assert (installed / "mitodet" / need).is_file(), need
    shipped = sorted(p.name for p in (installed / "mitodet" / "configs").glob("*.yaml"))
    assert shipped == sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))
    assert not (installed / "mitodet" / "configs").is_symlink()
    env = {**os.environ, "PYTHONPATH": str(installed)}
    cmd = [sys.executable, "-m", "mitodet", "train", "default-ca-rgb", "--set", f"data.crops={tmp_path}/none"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    # the name resolved to the installed file; it then fails (as it should) on the data path we gave
    line = one_error_line(r.returncode, r.stderr)
    assert f"{installed}/mitodet/configs/default-ca-rgb.yaml" in line and "data.crops" in line


def test_onnx_export_without_onnx_names_the_extra(cli, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError, as when it is not installed
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    code, out, err = cli("model", "export", ROOT / "mitodet/weights/default-ca-rgb.pt", "--onnx", tmp_path / "m.onnx")
    one_error_line(code, err, "onnx", "pip install 'mitodet[export]'")
    assert not (tmp_path / "m.onnx").exists() and not list(tmp_path.iterdir())


def test_onnx_backend_without_onnxruntime_names_the_extra(cli, monkeypatch, shared_data, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    patch = shared_data / "icpr2012_patches/images/A00_01_0.jpg"
    code, out, err = cli("detect", patch, "--mpp", "0.25", "--backend", "onnx", "--out", tmp_path)
    one_error_line(code, err, "onnxruntime", "mitodet[export]")


def test_augment_preview_as_the_readme_shows_it_on_a_fresh_checkout(cli, shared_data, monkeypatch, tmp_path):
    """`mitodet augment preview --protocol both --out grid.png` from the project root, with no runs/
    folder (no mined negatives yet): the default config is found by name and works."""
    monkeypatch.chdir(ROOT)
    code, out, err = cli(
        "augment", "preview", "--protocol", "both", "--out", tmp_path / "grid.png", "--n", "2", "--n-aug", "2"
    )
    assert code == 0, err
    assert (tmp_path / "grid.png").stat().st_size > 1000 and "ca-rgb, ca-od" in out


def test_installed_package_has_the_basics(installed):
    """What a Python package is expected to carry: the licence in its metadata, py.typed, classifiers."""
    assert (installed / "mitodet" / "py.typed").is_file()
    meta = next(installed.glob("mitodet-*.dist-info")) / "METADATA"
    text = meta.read_text()
    assert "License-Expression: MIT" in text and "License-File: LICENSE" in text
    assert "Classifier: Typing :: Typed" in text
    for f in ("LICENSE", "CITATION.cff", "CHANGELOG.md"):
        assert (ROOT / f).is_file(), f
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert "Lafarge" in (ROOT / "CITATION.cff").read_text()


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    """A built wheel installed into a fresh virtual environment (its dependencies seen through a
    .pth file pointing at this environment's site-packages, which pip cannot fetch here)."""
    import site
    import venv

    root = tmp_path_factory.mktemp("wheel")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", root / "dist", ROOT],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"pip cannot build a wheel here: {r.stderr[-300:]}")
    venv.create(root / "venv", with_pip=False)
    py = root / "venv" / "bin" / "python"
    target = subprocess.run([py, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True, text=True)
    (Path(target.stdout.strip()) / "deps.pth").write_text(site.getsitepackages()[0] + "\n")
    wheel = next((root / "dist").glob("mitodet-*.whl"))
    r = subprocess.run(
        [sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "-q", wheel],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-500:]
    return root / "venv"


def test_wheel_in_a_fresh_venv_trains_tiny_from_another_folder(wheel_venv, shared_data, tmp_path):
    """#20 item 7 as its 'done when' says: `MITODET_DATA=... mitodet train tiny --max-minutes 1`
    from a folder that is not the checkout, with the package from a built wheel."""
    exe = wheel_venv / "bin" / "mitodet"
    env = {**os.environ, "MITODET_DATA": str(shared_data), "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    where = subprocess.run([wheel_venv / "bin" / "python", "-c", "import mitodet; print(mitodet.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)  # fmt: skip
    assert where.stdout.startswith(str(wheel_venv))  # the wheel's copy, not the checkout's
    r = subprocess.run(
        [exe, "train", "tiny", "--max-minutes", "1", "--quiet"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr[-800:]
    runs = list((tmp_path / "runs").glob("tiny-*"))
    assert len(runs) == 1 and (runs[0] / "best.pt").is_file() and "best val loss" in r.stdout
