import pytest

from mitodet.io.image import read_image
from tests.conftest import need


@pytest.fixture(scope="session")
def monuseg_tile(shared_data):
    """A real 1000x1000 FFPE H&E tile (TCGA kidney) with clean staining."""
    rgb, _ = read_image(need(shared_data / "tissue/monuseg/TCGA-B0-5711-01Z-00-DX1.tif"))
    return rgb
