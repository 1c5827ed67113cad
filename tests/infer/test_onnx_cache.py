"""The ONNX graph cache cannot choose the results: swapped or foreign graphs are exported again."""

import shutil

import torch

from mitodet.infer.onnx import OnnxModel, _cache_path, agrees
from mitodet.model import create_model


def _two():
    torch.manual_seed(0)
    a = create_model("tiny").eval()
    torch.manual_seed(1)
    b = create_model("tiny").eval()
    return a, b


def test_swapped_cached_graphs_are_not_trusted(tmp_path, monkeypatch):
    monkeypatch.setenv("MITODET_CACHE", str(tmp_path))
    a, b = _two()
    OnnxModel(a, 1), OnnxModel(b, 1)  # both graphs cached
    pa, pb = _cache_path(a), _cache_path(b)
    assert pa.is_file() and pb.is_file() and pa != pb
    tmp = tmp_path / "swap"
    shutil.move(pa, tmp)
    shutil.move(pb, pa)
    shutil.move(tmp, pb)  # whoever can write the cache swaps them
    x = torch.rand(1, 3, 40, 40)
    for model in (a, b):
        net = OnnxModel(model, 1)
        assert agrees(net.session, model)
        with torch.no_grad():
            assert torch.allclose(net(x), model(x), atol=1e-4)  # its own answer, not the other's


def test_a_damaged_cached_graph_is_exported_again(tmp_path, monkeypatch):
    monkeypatch.setenv("MITODET_CACHE", str(tmp_path))
    a, _ = _two()
    OnnxModel(a, 1)
    _cache_path(a).write_bytes(b"not a graph")
    assert agrees(OnnxModel(a, 1).session, a)


def test_a_cache_that_cannot_be_written_exports_every_time(tmp_path, monkeypatch):
    """#19 item 16: a read-only (or full) cache is not an error: the graph is exported for this run."""
    import mitodet.infer.onnx as onnx_mod
    from mitodet.errors import MitodetError

    monkeypatch.setenv("MITODET_CACHE", str(tmp_path))
    real = onnx_mod.export_onnx

    def refuse(model, path):
        if str(path).startswith(str(tmp_path)):
            raise MitodetError(path, "cannot write (Read-only file system)")
        return real(model, path)

    monkeypatch.setattr(onnx_mod, "export_onnx", refuse)
    a, _ = _two()
    assert agrees(OnnxModel(a, 1).session, a)


def test_onnxruntime_is_imported_without_telemetry_chatter():
    """#19 item 18: on a read-only HOME (/sys is read-only even for root) ONNX Runtime's telemetry
    would print a coloured warning at import; mitodet imports it with telemetry off."""
    import subprocess
    import sys

    code = "from mitodet.model.export import import_onnxruntime; import_onnxruntime()"
    env = {"HOME": "/sys", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(__import__("tests.conftest").conftest.ROOT)}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0 and p.stderr == ""
