import numpy as np
import tifffile

from mitodet.infer import run
from mitodet.io.slide import open_slide
from tests.conftest import need


def test_slide_thumbnail_reads_bounded_blocks(shared_data, tmp_path, monkeypatch):
    from mitodet.io.image import read_image

    tile, _ = read_image(need(shared_data / "tissue" / "monuseg" / "TCGA-18-5592-01Z-00-DX1.tif"))
    big = np.concatenate([tile, tile[:, ::-1]], axis=1)[:900, :1700]  # one level, no pyramid
    tifffile.imwrite(tmp_path / "s.tif", big, resolution=(40000, 40000), resolutionunit="CENTIMETER")
    monkeypatch.setattr(run, "REGION", 256)
    with open_slide(tmp_path / "s.tif") as s:
        sizes = []
        read = s.read_region
        monkeypatch.setattr(s, "read_region", lambda x, y, w, h, m: sizes.append((w, h)) or read(x, y, w, h, m))
        thumb, f = run.slide_thumbnail(s, max_side=1000)
        # each block's source on the only level is ~REGION level-0 pixels, never the whole slide
        assert max(max(w, h) for w, h in sizes) / f <= 256 + 1 and len(sizes) > 4
        sizes.clear()
        whole = s.read(s.mpp / f)
    assert thumb.shape == whole.shape == (round(900 * f), 1000, 3)
    assert np.abs(thumb.astype(int) - whole).mean() < 2  # same picture as one whole read
