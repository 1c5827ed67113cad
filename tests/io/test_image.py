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


# -- issue 12, item 4: decompression bombs and images too large to read whole -----------------------
def png_claiming(shared_data, width: int, height: int) -> bytes:
    """A real 128x128 PNG whose IHDR header claims ``width x height`` (CRC fixed up)."""
    import struct
    import zlib

    b = need(shared_data / "midog21_crops/images/MIDOG21_6.png").read_bytes()
    ihdr = bytearray(b[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    return b[:16] + bytes(ihdr) + struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF) + b[33:]


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (12_000, 12_001), (1, 200_000_000)])
def test_png_bombs_are_refused_before_decoding_without_pillow_warnings(tmp_path, shared_data, width, height):
    import warnings

    from mitodet.io.image import image_size

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(shared_data, width, height))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning would raise here
        with pytest.raises(MitodetError, match="too large to read whole") as err:
            read_image(bomb, mpp=0.25)
        assert "\n" not in str(err.value) and "bomb.png" in str(err.value)
        if width * height < 2 * Image.MAX_IMAGE_PIXELS:  # Pillow still gives the size: slides can be routed
            assert image_size(bomb) == (width, height)


def test_at_the_limit_no_pillow_warning(tmp_path, shared_data):
    """12000 x 12000 (the limit, above Pillow's warning threshold): the header is read silently."""
    import warnings

    from mitodet.io.image import MAX_IMAGE_PIXELS, image_size

    edge = tmp_path / "edge.png"
    edge.write_bytes(png_claiming(shared_data, 12_000, 12_000))
    assert 12_000 * 12_000 == MAX_IMAGE_PIXELS > Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert image_size(edge) == (12_000, 12_000)
        with pytest.raises(MitodetError, match="truncated"):  # the real data is 128x128: decoding fails
            read_image(edge, mpp=0.25)


def test_jpeg_and_tiff_headers_claiming_huge_sizes(tmp_path, shared_data):
    import struct

    b = bytearray(need(shared_data / "icpr2012_patches/images/A00_01_0.jpg").read_bytes())
    i = 2
    while b[i + 1] not in (0xC0, 0xC1, 0xC2):
        i += 2 + struct.unpack(">H", b[i + 2 : i + 4])[0]
    b[i + 5 : i + 9] = struct.pack(">HH", 60_000, 60_000)
    (tmp_path / "bomb.jpg").write_bytes(bytes(b))
    with pytest.raises(MitodetError, match="bomb.jpg.*too large"):
        read_image(tmp_path / "bomb.jpg", mpp=0.25)
    tile = read_image(need(shared_data / "tissue/monuseg/TCGA-18-5592-01Z-00-DX1.tif"), check_spacing=False)[0]
    tifffile.imwrite(tmp_path / "bomb.tif", tile[:64, :64])
    t = bytearray((tmp_path / "bomb.tif").read_bytes())
    with tifffile.TiffFile(tmp_path / "bomb.tif") as tf:
        offsets = [tf.pages[0].tags[c].valueoffset for c in (256, 257)]
    for off in offsets:
        t[off : off + 4] = struct.pack("<I", 100_000)
    (tmp_path / "bomb.tif").write_bytes(bytes(t))
    with pytest.raises(MitodetError, match="bomb.tif.*too large"):
        read_image(tmp_path / "bomb.tif", mpp=0.25)


def test_a_bomb_in_a_folder_run_fails_alone(cli, tmp_path, shared_data):
    """detect on a folder holding a bomb and a real patch: one line for the bomb, the patch done, exit 2."""
    import shutil

    from tests.conftest import one_error_line

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bomb.png").write_bytes(png_claiming(shared_data, 100_000, 100_000))
    shutil.copy(need(shared_data / "icpr2012_patches/images/A00_01_0.jpg"), tmp_path / "in" / "a.jpg")
    code, out, err = cli("detect", tmp_path / "in", "--mpp", "0.25", "--out", tmp_path / "out")
    one_error_line(code, err, "bomb.png", "too large")
    assert "a.jpg: 1 mitotic figure(s)" in out and (tmp_path / "out" / "a.mitotic-figures.json").is_file()


# -- issue 12, item 7: implausible spacings ------------------------------------------------------------
@pytest.mark.parametrize("mpp", [2.5e-6, 0.01, 25.0])
def test_implausible_resolution_tags_are_refused(tmp_path, crop, mpp):
    from mitodet.io.image import check_stored_mpp

    path = tmp_path / "t.tif"
    tifffile.imwrite(path, crop, resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")
    with pytest.raises(MitodetError, match="t.tif: stored pixel spacing .* not plausible"):
        read_image(path)
    with pytest.raises(MitodetError, match="not plausible"):
        read_spacing(path)
    assert read_image(path, mpp=0.25)[1] == 0.25  # the user's value overrides the tag
    assert read_image(path, check_spacing=False)[1] is None  # for uses that ignore the spacing
    assert check_stored_mpp(0.25, path) == 0.25


@pytest.mark.parametrize("value", [1e-9, 0, -1, float("nan"), float("inf"), 20.5, 50, "abc", True])
def test_check_mpp_bounds(value):
    from mitodet.io.image import check_mpp

    with pytest.raises(MitodetError, match="--mpp"):
        check_mpp(value)
    assert check_mpp(0.05) == 0.05 and check_mpp(20) == 20.0


def test_non_square_pixels_are_refused_in_one_line(tmp_path, crop):
    """#19 item 7: a TIFF whose Y spacing differs from its X spacing would halve every area."""
    path = tmp_path / "t.tif"
    tifffile.imwrite(path, crop, resolution=(40000, 20000), resolutionunit="CENTIMETER")
    with pytest.raises(MitodetError, match=r"t.tif: its X and Y pixel spacings differ \(0.25 and 0.5 µm/px\)"):
        read_image(path)
    with pytest.raises(MitodetError, match="square pixels"):
        read_spacing(path)
    tifffile.imwrite(path, crop, resolution=(40000, 40000.2), resolutionunit="CENTIMETER")
    assert read_image(path)[1] == pytest.approx(0.25)  # rounding in the tags is not a difference


def _two_pages(path, first, second):
    with tifffile.TiffWriter(path) as w:
        for page in (first, second):
            w.write(page, photometric="rgb", resolution=(40000, 40000), resolutionunit="CENTIMETER")
    return path


def test_multipage_tiff_whose_page_0_is_not_the_image_is_refused(tmp_path, crop):
    """#19 item 7: a larger later page, or a blank page 0 beside a real one, is not a pyramid."""
    blank = np.full((4 * crop.shape[0], 4 * crop.shape[1], 3), 255, np.uint8)
    with pytest.raises(MitodetError, match=r"a.tif: page 1 \(\d+x\d+ px\) is larger than page 0"):
        read_image(_two_pages(tmp_path / "a.tif", crop, blank))
    with pytest.raises(MitodetError, match="b.tif: page 0 is blank but a later page holds an image"):
        read_image(_two_pages(tmp_path / "b.tif", blank, crop))
    small = np.ascontiguousarray(crop[::2, ::2])  # a real two-level pyramid reads page 0
    pixels, mpp = read_image(_two_pages(tmp_path / "c.tif", crop, small))
    assert pixels.shape == crop.shape and mpp == pytest.approx(0.25)
    assert read_image(tmp_path / "a.tif", page=1)[0].shape == blank.shape  # a page asked for by number
