import pytest

from mitodet.io.atomic import atomic_open, atomic_path


def test_atomic_open_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
    with atomic_open(target) as fh:
        fh.write("new")
    assert target.read_text() == "new"


def test_atomic_path_keeps_suffix(tmp_path):
    with atomic_path(tmp_path / "sub" / "plot.png") as tmp:
        assert tmp.suffix == ".png"
        tmp.write_bytes(b"x")
    assert (tmp_path / "sub" / "plot.png").read_bytes() == b"x"


def test_atomic_output_gets_usual_permissions(tmp_path):
    import os

    umask = os.umask(0)
    os.umask(umask)
    with atomic_open(tmp_path / "a.txt") as fh:
        fh.write("x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask
