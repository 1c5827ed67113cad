"""Names holding terminal escapes or newlines are printed as visible escapes, never raw."""

from __future__ import annotations

import numpy as np
import tifffile
from PIL import Image

from mitodet.errors import MitodetError, printable
from tests.conftest import need

EVIL = "a\nerror: forged\x1b[2J\x9b.tiff"


def test_printable_escapes_controls_and_bad_utf8():
    assert printable(EVIL) == "a\\nerror: forged\\x1b[2J\\x9b.tiff"
    assert printable("caf\udce9.tif") == "caf\\xe9.tif"  # a name that was not UTF-8 (os.fsdecode)
    assert str(MitodetError("x\r\ny", "bad")) == "x\\r\\ny: bad"


def test_detect_prints_an_evil_name_on_one_line(cli, shared_data, tmp_path, monkeypatch):
    jpg = sorted((need(shared_data / "icpr2012_patches") / "images").glob("*.jpg"))[0]
    patch = np.asarray(Image.open(jpg).convert("RGB"))
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite(EVIL, patch, photometric="rgb", resolution=(40000, 40000), resolutionunit="CENTIMETER")
    code, out, err = cli("detect", EVIL, "--out", "out", "--no-report")
    assert code == 0, err
    assert "\x1b" not in out + err and "\x9b" not in out + err
    assert not any(line.startswith("error: forged") for line in (out + err).splitlines())
    assert "a\\nerror: forged\\x1b[2J\\x9b.tiff: " in out
    code, out, err = cli("detect", "missing" + EVIL, "--out", "out")
    assert code == 2 and "\x1b" not in err
    assert [line for line in err.splitlines() if line.startswith("error")][0].startswith("error: missinga\\nerror")
