"""read_image / read_spacing on the real files and on bad inputs built from them."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from mitodet.errors import MitodetError
from mitodet.io.image import count_tiff_pages, read_image, read_spacing, read_tiff_pages
from tests.conftest import need


@pytest.fixture(scope="module")
def crop(shared_data):
    """A real 128x128 RGB crop of a mitotic figure."""
    return read_image(need(shared_data / "midog21_crops/images/MIDOG21_6.png"))[0]


def test_stack_tiff_spacing_and_pages(shared_data):
    path = need(shared_data / "midog25_stack/stack_5.tiff")
    assert read_spacing(path) == pytest.approx(0.248, abs=5e-4)
    pixels, mpp = read_image(path)
    assert pixels.shape == (128, 128, 3) and pixels.dtype == np.uint8 and mpp == pytest.approx(0.248, abs=5e-4)
    assert count_tiff_pages(path) == 16
    pages = read_tiff_pages(path)
    assert len(pages) == 16 and not np.array_equal(pages[0][0], pages[5][0])
    assert np.array_equal(read_image(path, page=5)[0], pages[5][0])
    assert read_image(path, mpp=0.3)[1] == 0.3  # explicit spacing wins
    with pytest.raises(MitodetError, match="page 16 does not exist"):
        read_image(path, page=16)


def test_png_jpeg_tiff_tiles(shared_data, crop):
    assert crop.shape == (128, 128, 3) and 50 < crop.mean() < 250
    jpg, mpp = read_image(need(shared_data / "icpr2012_patches/images/A00_01_0.jpg"), mpp=0.2456)
    assert jpg.shape == (256, 256, 3) and mpp == 0.2456
    tile = need(shared_data / "tissue/monuseg/TCGA-18-5592-01Z-00-DX1.tif")
    pixels, mpp = read_image(tile)
    assert pixels.shape == (1000, 1000, 3) and mpp is None  # 72-dpi placeholder is not a spacing
    assert read_spacing(tile) is None
    assert read_spacing(shared_data / "icpr2012_patches/images/A00_01_0.jpg") is None


def test_aperio_description_spacing(shared_data):
    assert read_spacing(need(shared_data / "wsi/CMU-1-Small-Region.svs")) == pytest.approx(0.499)
    assert read_spacing(need(shared_data / "wsi/tcga-cr-7395-01a-01-ts1.svs")) is None


def test_midog_sized_tiff_with_resolution_tags(tmp_path, shared_data):
    """A 7000x5000 MIDOG-format TIFF assembled from real MoNuSeg tiles, 0.25 µm/px in cm units."""
    tile = read_image(need(shared_data / "tissue/monuseg/TCGA-18-5592-01Z-00-DX1.tif"))[0]
    big = np.tile(tile, (5, 7, 1))
    path = tmp_path / "001.tiff"
    tifffile.imwrite(
        path, big, photometric="rgb", resolution=(40000, 40000), resolutionunit="CENTIMETER", compression="zlib"
    )
    pixels, mpp = read_image(path)
    assert pixels.shape == (5000, 7000, 3) and mpp == pytest.approx(0.25)
    assert np.array_equal(pixels[1000:2000, 3000:4000], tile)


def test_grayscale_becomes_rgb(tmp_path, crop):
    gray = crop.mean(axis=2).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    tifffile.imwrite(tmp_path / "g.tif", gray)
    for name in ("g.png", "g.tif"):
        pixels, _ = read_image(tmp_path / name)
        assert (
            pixels.shape == (128, 128, 3)
            and np.array_equal(pixels[..., 0], gray)
            and np.array_equal(pixels[..., 2], gray)
        )


def test_rgba_opaque_kept_varying_refused(tmp_path, crop):
    rgba = np.dstack([crop, np.full(crop.shape[:2], 255, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert np.array_equal(read_image(tmp_path / "a.png")[0], crop)
    rgba[:10, :10, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "b.png")
    with pytest.raises(MitodetError, match="varying alpha"):
        read_image(tmp_path / "b.png")


def test_palette_png(tmp_path, crop):
    Image.fromarray(crop).quantize(64).save(tmp_path / "p.png")
    pixels, _ = read_image(tmp_path / "p.png")
    assert pixels.shape == (128, 128, 3) and np.abs(pixels.astype(int) - crop).mean() < 12


def test_16bit(tmp_path, crop):
    tifffile.imwrite(tmp_path / "wide.tif", crop.astype(np.uint16) * 257, photometric="rgb")
    assert np.array_equal(read_image(tmp_path / "wide.tif")[0], crop)  # exact 8->16 expansion: undone
    tifffile.imwrite(tmp_path / "small.tif", crop.astype(np.uint16), photometric="rgb")
    assert np.array_equal(read_image(tmp_path / "small.tif")[0], crop)  # 8-bit values stored wide
    tifffile.imwrite(tmp_path / "raw.tif", crop.astype(np.uint16) * 40 + 3, photometric="rgb")
    with pytest.raises(MitodetError, match="16-bit image with values .* no clear mapping"):
        read_image(tmp_path / "raw.tif")


def test_truncated_and_corrupt(tmp_path, shared_data):
    png = need(shared_data / "midog21_crops/images/MIDOG21_6.png").read_bytes()
    (tmp_path / "t.png").write_bytes(png[: len(png) // 2])
    with pytest.raises(MitodetError, match="truncated") as err:
        read_image(tmp_path / "t.png")
    assert err.value.source.endswith("t.png")
    tif = need(shared_data / "tissue/monuseg/TCGA-18-5592-01Z-00-DX1.tif").read_bytes()
    (tmp_path / "t.tif").write_bytes(tif[: len(tif) // 3])
    with pytest.raises(MitodetError, match="TIFF"):
        read_image(tmp_path / "t.tif")
    tile = read_image(need(shared_data / "tissue/monuseg/TCGA-18-5592-01Z-00-DX1.tif"))[0]
    tifffile.imwrite(tmp_path / "whole.tif", tile, photometric="rgb")  # header first, strips after
    data = (tmp_path / "whole.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(MitodetError, match="corrupt or unreadable TIFF"):
        read_image(tmp_path / "cut.tif")
    (tmp_path / "junk.png").write_bytes(b"this is not an image at all")
    with pytest.raises(MitodetError, match="not a readable image"):
        read_image(tmp_path / "junk.png")
    (tmp_path / "hdr.tif").write_bytes(tif[:8])
    with pytest.raises(MitodetError):
        read_spacing(tmp_path / "hdr.tif")


def test_missing_file_and_bad_mpp(tmp_path):
    with pytest.raises(MitodetError, match="file not found"):
        read_image(tmp_path / "nope.tiff")
    with pytest.raises(MitodetError, match="not plausible"):
        read_image(tmp_path / "nope.tiff", mpp=-1)
