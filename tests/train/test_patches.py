import numpy as np
import torch

from mitodet.data.crops import load_midog21_crops
from mitodet.io.image import read_image
from mitodet.train.patches import KINDS, PoolImage, build_pool, grid_centres, labelled_image, tissue_image


def test_gather_matches_numpy_reflect_pad():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (20, 31, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    pool = build_pool([PoolImage("a", a, 0.25), PoolImage("b", b, 0.25)])
    img = torch.tensor([0, 0, 1, 1])
    cy = torch.tensor([0, 10, 4, 8])
    cx = torch.tensor([30, 3, 3, 0])
    win = pool.gather(img, cy, cx, 6)
    for i, (im, y, x) in enumerate(zip([a, a, b, b], cy.tolist(), cx.tolist(), strict=False)):
        padded = np.pad(im, ((10, 10), (10, 10), (0, 0)), mode="reflect")
        ref = padded[y + 10 - 3 : y + 10 + 3, x + 10 - 3 : x + 10 + 3].transpose(2, 0, 1)
        assert np.array_equal(win[i].numpy(), ref)


def test_crop_negatives_far_from_every_mitosis(shared_data):
    ds = load_midog21_crops(shared_data / "midog21_crops")
    recs = [r for r in ds if len(r.mitoses) > 1][:5] + [r for r in ds if r.imposters][:3]
    for rec in recs:
        px, _ = read_image(rec.path)
        im = labelled_image(rec, px, 0.25, grid=4, border=8)
        neg = np.array([(y, x) for y, x, k in im.negatives if k == KINDS.index("crop")])
        mf = np.array([(p.y, p.x) for p in rec.mitoses])
        d = np.sqrt(((neg[:, None] - mf[None]) ** 2).sum(-1)).min(1)
        assert d.min() >= 30.0  # 7.5 µm at 0.25 µm/px
        assert neg.min() >= 8 and neg.max() <= 127 - 8
        assert len(im.positives) == len(rec.mitoses)
        assert sum(k == KINDS.index("imposter") for *_, k in im.negatives) == len(rec.imposters)


def test_tissue_background_dropped(shared_data):
    tile = sorted((shared_data / "tissue" / "monuseg").glob("*.tif"))[0]
    px, _ = read_image(tile, 0.25)
    im = tissue_image("t", px, 0.25, grid=32, border=16, max_brightness=0.86)
    assert 0 < len(im.negatives) <= len(grid_centres(1000, 1000, 32, 16))
    white = px.copy()
    white[:, :500] = 250  # left half background
    im2 = tissue_image("w", white, 0.25, grid=32, border=16, max_brightness=0.86)
    assert all(x >= 500 - 8 for _, x, _ in im2.negatives)
