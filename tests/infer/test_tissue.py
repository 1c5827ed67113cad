"""The tissue mask on real slides and tiles; ink, background, holes."""

import numpy as np
import pytest

from mitodet.infer.plan import image_tissue, slide_thumbnail
from mitodet.infer.tissue import MASK_MPP, tissue_mask, write_mask_png
from mitodet.io.image import read_image
from mitodet.io.slide import open_slide
from tests.conftest import need


@pytest.fixture(scope="module")
def tile(shared_data):
    return read_image(need(shared_data / "tissue" / "monuseg" / "TCGA-38-6178-01Z-00-DX1.tif"))[0]


def test_real_slides(shared_data):
    with open_slide(need(shared_data / "wsi" / "CMU-1-Small-Region.svs")) as s:
        pic, f = slide_thumbnail(s, target_mpp=MASK_MPP)
        tm = tissue_mask(pic, s.mpp / f)
        area = s.dimensions[0] * s.dimensions[1] * (s.mpp / 1000) ** 2
    # a strip of skin on glass: about a third of the picture; the glass around it is not tissue
    assert 0.2 < tm.fraction < 0.5 and abs(tm.area_mm2 - tm.fraction * area) < 0.02 * area
    assert not tm.mask[:, :10].any() and not tm.mask[:10, :].any()  # background corners
    assert tm.ink is not None and tm.ink.any()  # the green marking dye at its edge is excluded
    with open_slide(need(shared_data / "wsi" / "tcga-cr-7395-01a-01-ts1.svs"), mpp=1.0) as s:
        pic, f = slide_thumbnail(s, target_mpp=MASK_MPP)
        tm = tissue_mask(pic, s.mpp / f)
    assert 0.5 < tm.fraction < 0.75  # a whole section; the blank corners and scan bands are not tissue


def test_tissue_everywhere_in_real_tiles(shared_data):
    for name in ("TCGA-B0-5710-01Z-00-DX1.tif", "TCGA-A7-A13E-01Z-00-DX1.tif", "TCGA-KB-A93J-01A-01-TS1.tif"):
        img, _ = read_image(need(shared_data / "tissue" / "monuseg" / name))
        assert image_tissue(img, 0.25).fraction > 0.97, name  # pale stroma included


def test_ink_background_and_holes(tile, tmp_path):
    # a real tile on white glass, with a green and a blue pen stroke, a small and a large hole
    canvas = np.full((1600, 1600, 3), 244, np.uint8)
    canvas[300:1300, 300:1300] = tile
    canvas[600:640, 100:1500] = (40, 150, 60)  # green pen across tissue and glass
    canvas[900:940, 100:1500] = (30, 60, 170)  # blue pen
    canvas[450:490, 450:490] = 244  # a 10 µm hole: filled
    canvas[750:1230, 750:1230] = 244  # a 120 µm lumen (0.014 mm²): stays out
    tm = image_tissue(canvas, 0.25)
    g = tm.mpp / 0.25  # input px per mask px

    def at(y, x):
        return bool(tm.mask[int(y / g), int(x / g)])

    assert at(700, 700) and at(470, 470)  # tissue, the small hole filled
    assert not at(1000, 1000) and not at(100, 100)  # the lumen and the glass
    assert not at(620, 600) and not at(920, 600)  # the pen strokes over tissue
    assert not at(620, 150)  # and over glass
    expected = (1000 * 1000 - 480 * 480 - 2 * 40 * 1000 + 2 * 40 * 480) * (0.25e-3) ** 2
    assert abs(tm.area_mm2 - expected) < 0.12 * expected  # edges at the mask resolution (1.6 µm here)
    write_mask_png(tmp_path / "m.png", tm)
    from PIL import Image

    png = np.asarray(Image.open(tmp_path / "m.png"))
    assert png.shape == tm.mask.shape and set(np.unique(png)) <= {0, 255}


def test_need_function_maps_cells_to_the_mask(tile):
    tm = image_tissue(tile, 0.25)
    tm.mask[:] = False
    tm.mask[: tm.mask.shape[0] // 2] = True  # top half
    fn = tm.need_fn(0.25)
    got = fn(np.array([10.0, 500.0]), np.array([10.0, 300.0, 700.0, 990.0]))
    assert got.shape == (4, 2) and got[:2].all() and not got[3].any()
    # a region whose pixel (0, 0) sits at (0, 600) of the picture: all of it in the bottom half
    assert not tm.need_fn(0.25, 0, 600)(np.array([10.0]), np.array([100.0]))[0, 0]
