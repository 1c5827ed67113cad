"""Spacing and option bounds (issue 12, item 7): every numeric option of every command is
checked before any work, in one line naming the option; implausible spacings (given or stored)
and resamplings that would exhaust memory are refused; a checkpoint's bad metadata names the file."""

from __future__ import annotations

import pytest
import tifffile
import torch

from mitodet.errors import MitodetError
from tests.conftest import ROOT, need, one_error_line

BUNDLED = ROOT / "mitodet" / "weights" / "default-ca-rgb.pt"
PATCH = "icpr2012_patches/images/A00_01_0.jpg"
TILE = "tissue/monuseg/TCGA-18-5592-01Z-00-DX1.tif"
MIDOG = "annotations/MIDOG.json"
GT = "formats/midog2025_t1_eval"

OUT_OF_RANGE = [
    # detect (the cases first)
    (["detect", "{patch}", "--mpp", "1e-9"], "--mpp"),
    (["detect", "{patch}", "--mpp", "50"], "--mpp"),
    (["detect", "{patch}", "--mpp", "0"], "--mpp"),
    (["detect", "{patch}", "--mpp", "nan"], "--mpp"),
    (["detect", "{patch}", "--mpp", "inf"], "--mpp"),
    (["detect", "{patch}", "--mpp", "abc"], "--mpp"),
    (["detect", "{patch}", "--mpp", "0.25", "--threads", "-1"], "--threads"),
    (["detect", "{patch}", "--mpp", "0.25", "--threads", "0"], "--threads"),
    (["detect", "{patch}", "--mpp", "0.25", "--device", "banana"], "--device"),
    (["detect", "{patch}", "--mpp", "0.25", "--device", "cuda:99"], "--device"),
    (["detect", "{patch}", "--mpp", "0.25", "--threshold", "nan"], "--threshold"),
    (["detect", "{patch}", "--mpp", "0.25", "--threshold", "1.5"], "--threshold"),
    (["detect", "{patch}", "--mpp", "0.25", "--threshold", "-0.1"], "--threshold"),
    (["detect", "{patch}", "--mpp", "0.25", "--tile", "0"], "--tile"),
    (["detect", "{patch}", "--mpp", "0.25", "--tile", "-64"], "--tile"),
    (["detect", "{patch}", "--mpp", "0.25", "--tile", "100000"], "--tile"),
    (["detect", "{patch}", "--mpp", "0.25", "--batch-size", "0"], "--batch-size"),
    (["detect", "{patch}", "--mpp", "0.25", "--backend", "banana"], "--backend"),
    # the other commands
    (["calibrate", "{tmp}", "--limit", "0"], "--limit"),
    (["calibrate", "{tmp}", "--threads", "-2"], "--threads"),
    (["calibrate", "{tmp}", "--device", "gpu"], "--device"),
    (["evaluate", "-t", "{gt}/ground_truth.json", "-p", "{gt}", "--mpp", "-1"], "--mpp"),
    (["data", "split", "{midog}", "--out", "{tmp}/s.json", "--val-fraction", "1.5"], "--val-fraction"),
    (["data", "split", "{midog}", "--out", "{tmp}/s.json", "--val-fraction", "0"], "--val-fraction"),
    (["data", "split", "{midog}", "--out", "{tmp}/s.json", "--val-fraction", "nan"], "--val-fraction"),
    (["data", "split", "{midog}", "--out", "{tmp}/s.json", "--seed", "-1"], "--seed"),
    (["data", "image", "{tile}", "--mpp", "1e-9"], "--mpp"),
    (["data", "image", "{tile}", "--mpp", "0.25", "--target-mpp", "0"], "--target-mpp"),
    (["stain", "unmix", "{tile}", "--out", "{tmp}/u", "--beta", "0"], "--beta"),
    (["stain", "unmix", "{tile}", "--out", "{tmp}/u", "--alpha", "60"], "--alpha"),
    (["stain", "unmix", "{tile}", "--out", "{tmp}/u", "--residual-scale", "-1"], "--residual-scale"),
    (["stain", "vectors", "{tile}", "--alpha", "nan"], "--alpha"),
    (["stain", "vectors", "{tile}", "--mpp", "100"], "--mpp"),
    (["mine", "residual", "{tile}", "--out", "{tmp}/n.csv", "--mpp", "50"], "--mpp"),
    (["mine", "residual", "{tile}", "--out", "{tmp}/n.csv", "--per-image", "0"], "--per-image"),
    (["mine", "residual", "{tile}", "--out", "{tmp}/n.csv", "--threshold", "nan"], "--threshold"),
    (["mine", "residual", "{tile}", "--out", "{tmp}/n.csv", "--sigma-um", "0"], "--sigma-um"),
    (["mine", "residual", "{tile}", "--out", "{tmp}/n.csv", "--spacing-um", "-3"], "--spacing-um"),
    (["mine", "residual", "{tile}", "--out", "{tmp}/n.csv", "--min-distance-um", "-1"], "--min-distance-um"),
    (["mine", "residual", "{tile}", "--out", "{tmp}/n.csv", "--patch", "0"], "--patch"),
    (["mine", "residual", "{tile}", "--out", "{tmp}/n.csv", "--crop", "100000"], "--crop"),
    (["mine", "residual", "{tile}", "--out", "{tmp}/n.csv", "--beta", "-1"], "--beta"),
    (["mine", "residual", "{tile}", "--out", "{tmp}/n.csv", "--alpha", "50"], "--alpha"),
    (["mine", "hard", "{tmp}", "--rounds", "0"], "--rounds"),
    (["mine", "hard", "{tmp}", "--drop-quantile", "1"], "--drop-quantile"),
    (["mine", "hard", "{tmp}", "--patience", "0"], "--patience"),
    (["mine", "hard", "{tmp}", "--max-minutes", "-5"], "--max-minutes"),
    (["train", "tiny", "--max-minutes", "0"], "--max-minutes"),
    (["augment", "preview", "--n", "0", "--out", "{tmp}/p.png"], "--n"),
    (["augment", "preview", "--n-aug", "-1", "--out", "{tmp}/p.png"], "--n-aug"),
    (["augment", "preview", "--seed", "-3", "--out", "{tmp}/p.png"], "--seed"),
    (["model", "check", "fast", "--image", "{patch}", "--size", "0"], "--size"),
    (["model", "summary", "fast", "--set", "width=[1"], "--set"),
]


@pytest.mark.parametrize("args, option", OUT_OF_RANGE, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_bad_option_values_are_one_line(cli, shared_data, tmp_path, args, option):
    values = {
        "patch": need(shared_data / PATCH),
        "tile": need(shared_data / TILE),
        "midog": need(shared_data / MIDOG),
        "gt": need(shared_data / GT),
        "tmp": tmp_path,
    }
    code, out, err = cli(*[a.format(**values) for a in args])
    one_error_line(code, err, option)
    assert not (tmp_path / "out").exists() and not (tmp_path / "u").exists()


def test_resampling_that_would_exhaust_memory_is_refused(cli, shared_data, tmp_path):
    """--mpp 20 on a real 256x256 patch: x80 to 20480x20480 px; refused in one line."""
    code, out, err = cli("detect", need(shared_data / PATCH), "--mpp", "20", "--out", tmp_path)
    one_error_line(code, err, "20480x20480", "limit")


def _tiff(path, mpp=None, **kw):
    from mitodet.io.image import read_image

    rgb, _ = read_image(need(path[1]), check_spacing=False)
    if mpp is not None:
        kw.update(resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")
    tifffile.imwrite(path[0], rgb[:256, :256], **kw)
    return path[0]


@pytest.mark.parametrize("mpp", [2.5e-6, 30.0])
def test_implausible_stored_spacing_names_the_file(cli, shared_data, tmp_path, mpp):
    tif = _tiff((tmp_path / "tag.tif", shared_data / TILE), mpp)
    code, out, err = cli("detect", tif, "--out", tmp_path / "o")
    one_error_line(code, err, "tag.tif", "not plausible", "--mpp")
    code, out, err = cli("detect", tif, "--out", tmp_path / "o", "--mpp", "0.25")  # --mpp overrides the tag
    assert code == 0, err
    code, out, err = cli("stain", "vectors", tif)  # the spacing plays no part: shown as unknown
    assert code == 0, err


def test_screen_dpi_tag_reads_as_no_spacing(cli, shared_data, tmp_path):
    tif = _tiff((tmp_path / "dpi.tif", shared_data / TILE), resolution=(72, 72), resolutionunit="INCH")
    code, out, err = cli("detect", tif, "--out", tmp_path / "o")
    one_error_line(code, err, "dpi.tif", "pass --mpp")


def _checkpoint(path, meta=None, config=None, drop=None):
    payload = torch.load(BUNDLED, weights_only=True)
    payload["meta"].update(meta or {})
    payload["config"].update(config or {})
    if drop:
        payload.pop(drop)
    torch.save(payload, path)
    return path


@pytest.mark.parametrize(
    "meta, config, drop, words",
    [
        ({"threshold": "abc"}, None, None, ["threshold"]),
        ({"threshold": float("nan")}, None, None, ["threshold"]),
        ({"threshold": 2.0}, None, None, ["threshold"]),
        ({"mpp": 0}, None, None, ["spacing"]),
        ({"mpp": "x"}, None, None, ["spacing"]),
        ({"interpolation": "spline"}, None, None, ["interpolation"]),
        (None, {"name": "resnet9000"}, None, ["resnet9000"]),
        (None, {"width": -3}, None, []),
        (None, None, "state_dict", ["weights"]),
    ],
)
def test_bad_checkpoint_metadata_names_the_file(cli, shared_data, tmp_path, meta, config, drop, words):
    ckpt = _checkpoint(tmp_path / "c.pt", meta, config, drop)
    code, out, err = cli("detect", need(shared_data / PATCH), "--mpp", "0.25", "--out", tmp_path / "o", "-m", ckpt)
    one_error_line(code, err, "c.pt", *words)
    code, out, err = cli("model", "summary", ckpt)
    one_error_line(code, err, "c.pt")


def test_library_checks_guard_the_detector_too(shared_data):
    """Without the CLI's callbacks (e.g. another front end), the detector refuses the same values."""
    from mitodet.infer.detector import Detector
    from mitodet.model import create_model

    net = create_model("tiny")
    for kw, word in [
        ({"tile": 0}, "tile"),
        ({"batch_size": 0}, "batch size"),
        ({"threshold": float("nan")}, "threshold"),
        ({"mpp": 0.0}, "spacing"),
        ({"device": "banana"}, "device"),
        ({"interpolation": "spline"}, "interpolation"),
    ]:
        with pytest.raises(MitodetError, match=word):
            Detector(net, **kw)
    det = Detector(net, mpp=0.25)
    with pytest.raises(MitodetError, match="threshold"):
        det.detect(torch.zeros(1).numpy(), threshold=float("nan"))
    with pytest.raises(MitodetError, match="threads"):
        Detector.from_checkpoint(BUNDLED, threads=-1)
