import numpy as np
from PIL import Image
from typer.testing import CliRunner

from mitodet.cli.main import app
from mitodet.errors import MitodetError
from tests.conftest import need

TILE = "tissue/monuseg/TCGA-B0-5711-01Z-00-DX1.tif"


def test_unmix_writes_channels_and_legend(shared_data, tmp_path):
    image = need(shared_data / TILE)
    res = CliRunner().invoke(app, ["stain", "unmix", str(image), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "H-E angle" in res.output
    for name in ("hematoxylin", "eosin", "residual"):
        png = np.asarray(Image.open(tmp_path / f"{image.stem}_{name}.png"))
        assert png.shape == (1000, 1000, 3)
    h = np.asarray(Image.open(tmp_path / f"{image.stem}_hematoxylin.png")).astype(int)
    assert h[..., 0].mean() < h[..., 1].mean() + 40  # purple/blue, not pink
    assert (tmp_path / f"{image.stem}_legend.png").stat().st_size > 10_000


def test_vectors_table_and_errors(shared_data, tmp_path):
    image = need(shared_data / TILE)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 250, np.uint8)).save(blank)
    runner = CliRunner()
    res = runner.invoke(app, ["stain", "vectors", str(image)])
    assert res.exit_code == 0, res.output
    assert image.name in res.output and "hematoxylin" in res.output
    res = runner.invoke(app, ["stain", "vectors", str(image), str(blank)])
    assert res.exit_code == 2 and "no tissue" in res.output
    res = runner.invoke(app, ["stain", "unmix", str(blank), "--out", str(tmp_path)])
    assert isinstance(res.exception, MitodetError) and "no tissue" in str(res.exception)
    assert str(blank) in str(res.exception)
