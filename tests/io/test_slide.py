"""open_slide / Slide on the two real SVS files, the TIFF stack and images."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile

from mitodet.errors import MitodetError
from mitodet.io.image import read_image
from mitodet.io.slide import UpsamplingWarning, open_slide
from tests.conftest import need


def test_cmu_small_region(shared_data):
    path = need(shared_data / "wsi/CMU-1-Small-Region.svs")
    with open_slide(path) as slide:
        assert slide.dimensions == (2220, 2967) and slide.mpp == pytest.approx(0.499)
        # At the stored spacing the read is exact: the level-0 pixels themselves.
        native = slide.read_region(100, 200, 300, 150, target_mpp=slide.mpp)
        assert native.shape == (150, 300, 3) and native.dtype == np.uint8
        assert np.array_equal(native, slide.read_region(0, 0, 500, 400, target_mpp=slide.mpp)[200:350, 100:400])
        with pytest.warns(UpsamplingWarning, match="upsamples x2.00"):
            up = slide.read_region(200, 400, 600, 300)  # default target 0.25 µm/px
        assert up.shape == (300, 600, 3)
        # Upsampled x2 then averaged back 2x2 is close to the native pixels.
        back = up.reshape(150, 2, 300, 2, 3).mean(axis=(1, 3))
        assert np.abs(back - native).mean() < 6
        assert slide.size_at(0.25) == (4431, 5922)


def test_tcga_without_spacing(shared_data):
    path = need(shared_data / "wsi/tcga-cr-7395-01a-01-ts1.svs")
    with pytest.raises(MitodetError, match="no pixel spacing stored; pass --mpp") as err:
        open_slide(path)
    assert err.value.source == str(path)
    with open_slide(path, mpp=0.25) as slide:
        assert len(slide.level_dimensions) == 2
        assert slide.best_level(0.25) == 0 and slide.best_level(0.5) == 1 and slide.best_level(2.0) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # downsampling must not warn
            coarse = slide.read_region(500, 400, 200, 100, target_mpp=0.5)
        fine = slide.read_region(1000, 800, 400, 200, target_mpp=0.25)
        assert coarse.shape == (100, 200, 3)
        assert np.abs(fine.reshape(100, 2, 200, 2, 3).mean(axis=(1, 3)) - coarse).mean() < 12
        edge = slide.read_region(-20, -20, 40, 40)
        assert (edge[:20, :20] == 255).all()  # outside the slide: white


def test_stack_and_images(shared_data, tmp_path):
    stack = need(shared_data / "midog25_stack/stack_5.tiff")
    with open_slide(stack) as slide:
        assert slide.mpp == pytest.approx(0.248, abs=5e-4)
        assert np.array_equal(slide.read(slide.mpp), read_image(stack)[0])
    png = need(shared_data / "midog21_crops/images/MIDOG21_6.png")
    with pytest.raises(MitodetError, match="pass --mpp"):
        open_slide(png)
    with open_slide(png, mpp=0.25) as slide:
        assert np.array_equal(slide.read(), read_image(png)[0])
        assert slide.read(0.5).shape == (64, 64, 3)
    # A MIDOG-sized strip TIFF goes through tiffslide and keeps its resolution tags.
    tile = read_image(need(shared_data / "tissue/monuseg/TCGA-18-5592-01Z-00-DX1.tif"))[0]
    big = tmp_path / "001.tiff"
    tifffile.imwrite(
        big, np.tile(tile, (5, 7, 1)), photometric="rgb", resolution=(40000, 40000), resolutionunit="CENTIMETER"
    )
    with open_slide(big) as slide:
        assert slide.dimensions == (7000, 5000) and slide.mpp == pytest.approx(0.25)
        assert np.array_equal(slide.read_region(3000, 1000, 1000, 1000), tile)


def test_bad_slides(tmp_path, shared_data):
    with pytest.raises(MitodetError, match="file not found"):
        open_slide(tmp_path / "missing.svs")
    data = need(shared_data / "wsi/CMU-1-Small-Region.svs").read_bytes()
    (tmp_path / "cut.svs").write_bytes(data[:4096])
    with pytest.raises(MitodetError) as err:
        open_slide(tmp_path / "cut.svs").read_region(0, 0, 64, 64)
    assert "cut.svs" in str(err.value)


def test_slide_with_non_square_pixels_is_refused(tmp_path, shared_data):
    """#19 item 7 for slides: a tiled TIFF whose library spacing differs in X and Y."""
    crop = read_image(need(shared_data / "icpr2012_patches/images/A00_01_0.jpg"), mpp=0.25)[0]
    path = tmp_path / "ns.tif"
    big = np.tile(crop, (4, 4, 1))
    tifffile.imwrite(
        path, big, photometric="rgb", tile=(256, 256), resolution=(40000, 20000), resolutionunit="CENTIMETER"
    )
    with pytest.raises(MitodetError, match=r"ns.tif: its X and Y pixel spacings differ \(0.25 and 0.5 µm/px\)"):
        open_slide(path)


def test_slide_tiff_with_a_larger_later_page_is_refused(tmp_path, shared_data):
    crop = read_image(need(shared_data / "icpr2012_patches/images/A00_01_0.jpg"), mpp=0.25)[0]
    path = tmp_path / "two.tif"
    with tifffile.TiffWriter(path) as w:
        w.write(crop, photometric="rgb", resolution=(40000, 40000), resolutionunit="CENTIMETER")
        w.write(np.tile(crop, (3, 3, 1)), photometric="rgb", resolution=(40000, 40000), resolutionunit="CENTIMETER")
    with pytest.raises(MitodetError, match="two.tif: page 1 .* is larger than page 0"):
        open_slide(path)
