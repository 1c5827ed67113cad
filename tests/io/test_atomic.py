from pathlib import Path

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


def test_kill_9_leftovers_are_removed_by_the_next_run(tmp_path):
    """A process killed with SIGKILL inside an atomic write leaves its hidden temporary file;
    remove_stale_temps (called by the commands on their output folders) removes it once it is
    stale, and nothing else: not a writer's fresh file, not other hidden files, not outputs."""
    import os
    import subprocess
    import sys
    import time

    from mitodet.io.atomic import remove_stale_temps, temp_target

    code = (
        "import os, signal, sys\n"
        "from mitodet.io.atomic import atomic_open\n"
        "with atomic_open(sys.argv[1]) as fh:\n"
        "    fh.write('half'); fh.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "img.mitotic-figures.json")], env=env)
    assert r.returncode == -9
    left = [p for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].name.startswith(".~mitodet-partial~.img.mitotic-figures.")
    assert temp_target(left[0].name) == "img.mitotic-figures.json"
    keep = [tmp_path / ".bashrc", tmp_path / ".notes.txt", tmp_path / "img.csv", tmp_path / ".x.abcd1234.json.bak"]
    # dotfiles of the user that have the shape of the old temporary names (issue 19, item 1)
    keep += [
        tmp_path / n for n in (".env.template", ".notes.12345678.txt", ".backup.archive_.tar", ".a.b.c.k2j_x9ab.json")
    ]
    for p in keep:
        p.write_text("mine")
    fresh = tmp_path / ".other.zzzz9999.png"
    fresh.write_text("")
    assert remove_stale_temps(tmp_path) == []  # all fresh: could belong to a running writer
    old = time.time() - 3600
    for p in [left[0], *keep]:
        os.utime(p, (old, old))
    assert remove_stale_temps(tmp_path) == [left[0]]
    assert all(p.exists() for p in keep) and fresh.exists()
    assert remove_stale_temps(tmp_path / "missing") == []


def test_commands_clear_their_output_folder(cli, tmp_path, shared_data):
    """evaluate removes a stale temporary file (of a killed earlier run) from --out."""
    import os
    import time

    from tests.conftest import need

    gt = need(shared_data / "formats" / "midog2025_t1_eval")
    (tmp_path / "ev").mkdir()
    stale = tmp_path / "ev" / ".~mitodet-partial~.metrics.a1b2c3d4.json"
    stale.write_text("")
    os.utime(stale, (time.time() - 3600,) * 2)
    code, out, err = cli(
        "evaluate", "-t", gt / "ground_truth.json", "-p", gt / "predictions.json", "-o", tmp_path / "ev"
    )
    assert code == 0, err
    assert not stale.exists() and (tmp_path / "ev" / "metrics.json").is_file()


def test_disk_full_names_the_output_and_leaves_nothing(tmp_path, monkeypatch):
    """#19 item 17: ENOSPC while writing is one line naming the output, and no temporary file stays."""
    import errno

    from mitodet.errors import MitodetError
    from mitodet.io.atomic import write_text

    class Full:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("builtins.open", lambda *a, **k: Full())
    with pytest.raises(MitodetError, match=r"out\.json: cannot write \(No space left on device\)"):
        write_text(tmp_path / "out.json", "{}")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
