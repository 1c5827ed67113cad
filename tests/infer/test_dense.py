import numpy as np
import torch

from mitodet.infer import Detector, dense_map
from mitodet.model import create_model
from tests.infer.helpers import ImpulseNet


def _whole(model, image):
    x = torch.from_numpy(image).permute(2, 0, 1)[None].to(next(model.parameters()).dtype) / 255
    with torch.no_grad():
        return torch.softmax(model(x).float(), 1)[0, 1].numpy()


def test_tiled_map_equals_untiled_map():
    torch.manual_seed(0)
    model = create_model("tiny").eval().double()  # float64: the comparison is exact up to rounding
    img = np.random.default_rng(0).integers(0, 256, (150, 222, 3), dtype=np.uint8)
    full = _whole(model, img)
    for tile, bs in [(40, 3), (64, 1), (1000, 4)]:
        tiled = dense_map(model, img, tile=tile, batch_size=bs)
        assert tiled.shape == full.shape == (model.output_size(150), model.output_size(222))
        np.testing.assert_allclose(tiled, full, rtol=0, atol=1e-7)


def test_impulse_maps_back_to_its_pixel():
    det = Detector(ImpulseNet(), mpp=0.25, threshold=0.5, min_distance_um=2.0)
    for x, y in [(40, 23), (41, 60), (3, 2), (118, 77)]:  # incl. near the border (reflection padding)
        img = np.zeros((80, 120, 3), np.uint8)
        img[y, x] = 255
        dets = det.detect(img, 0.25)
        top = dets[0]
        assert top.label == "mitotic figure" and top.probability > 0.99
        # stride 2: the peak cell covers 2x2 pixels, its centre is within half a pixel of each
        assert abs(top.x - x) <= 0.5 and abs(top.y - y) <= 0.5, (x, y, top)


def test_resampled_and_tiny_images():
    det = Detector(ImpulseNet(), mpp=0.25, threshold=0.5, min_distance_um=2.0)
    img = np.zeros((60, 60, 3), np.uint8)
    img[30:32, 20:22] = 255  # 2x2 blob at 0.125 µm/px -> one pixel at the model's 0.25
    dets = det.detect(img, 0.125)
    assert abs(dets[0].x - 20.5) <= 1.0 and abs(dets[0].y - 30.5) <= 1.0
    small = np.zeros((5, 7, 3), np.uint8)  # smaller than the receptive field: padded, still scored
    small[2, 3] = 255
    d = det.detect(small, 0.25)
    assert d and abs(d[0].x - 3) <= 0.5 and abs(d[0].y - 2) <= 0.5


def test_probability_map_geometry_real_model():
    model = create_model("tiny").eval()
    det = Detector(model, mpp=0.25)
    img = np.full((50, 64, 3), 200, np.uint8)
    pm = det.probability_map(img, 0.25)
    # reflection padding makes cells cover the image border: first centre within a pixel of 0
    assert -1.5 <= pm.x0 <= 0.5 and pm.step_x == pm.step_y == 2
    x_last, _ = pm.to_image(0, pm.prob.shape[1] - 1)
    assert x_last >= 64 - 2


def test_padding_per_tile_equals_padded_image():
    torch.manual_seed(0)
    model = create_model("tiny").eval().double()
    img = np.random.default_rng(2).integers(0, 256, (90, 130, 3), dtype=np.uint8)
    pad = (40, 44, 40, 46)  # even, as the Detector uses; bottom/right wider (tiny-image case)
    full = _whole(model, np.pad(img, ((40, 44), (40, 46), (0, 0)), mode="reflect"))
    for tile in (40, 64, 1000):  # tiles inside, across one edge and across every edge
        tiled = dense_map(model, img, tile=tile, batch_size=2, pad=pad)
        np.testing.assert_allclose(tiled, full, rtol=0, atol=1e-7)


def test_onnx_backend_matches_torch(shared_data, tmp_path):
    from mitodet.infer.onnx import OnnxModel
    from mitodet.io.image import read_image
    from mitodet.model import save_checkpoint
    from mitodet.model.export import fold
    from tests.conftest import need

    img, _ = read_image(need(shared_data / "tissue" / "monuseg" / "TCGA-18-5592-01Z-00-DX1.tif"))
    img = img[:180, :260]
    torch.manual_seed(0)
    model = create_model("tiny").eval()
    ref = dense_map(fold(model), img, tile=96, batch_size=2)
    onnx = dense_map(OnnxModel(model, threads=1), img, tile=96, batch_size=2)
    np.testing.assert_allclose(onnx, ref, rtol=0, atol=1e-5)
    save_checkpoint(tmp_path / "m.pt", model, mpp=0.25, threshold=0.5)
    a = Detector.from_checkpoint(tmp_path / "m.pt").candidates(img, 0.25)
    b = Detector.from_checkpoint(tmp_path / "m.pt", backend="onnx").candidates(img, 0.25)
    assert [(d.x, d.y) for d in a[:20]] == [(d.x, d.y) for d in b[:20]]
