import pytest
import torch

from mitodet.errors import MitodetError
from mitodet.model import create_model, load_checkpoint, save_checkpoint
from tests.model.helpers import random_model


def test_round_trip_with_meta(tmp_path):
    model = random_model("tiny", width=3)
    path = save_checkpoint(tmp_path / "m.pt", model, mpp=0.25, threshold=0.6, data={"split": "a"})
    loaded, meta = load_checkpoint(path)
    assert meta == {"mpp": 0.25, "threshold": 0.6, "data": {"split": "a"}}
    assert loaded.config == {"name": "tiny", "width": 3} and not loaded.training
    x = torch.rand(2, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary left behind


def test_folded_copy_is_refused(tmp_path):
    from mitodet.model.export import fold

    with pytest.raises(ValueError, match="folded"):
        save_checkpoint(tmp_path / "f.pt", fold(create_model("tiny")))


def test_paper_checkpoint_is_small(tmp_path):
    path = save_checkpoint(tmp_path / "p.pt", create_model("paper"))
    assert path.stat().st_size < 3e6


def test_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(MitodetError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
    good = save_checkpoint(tmp_path / "good.pt", create_model("tiny"))
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(MitodetError, match="not a readable checkpoint"):
        load_checkpoint(cut)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(MitodetError, match="not a mitodet model checkpoint"):
        load_checkpoint(foreign)
    wrong = tmp_path / "wrong.pt"
    payload = torch.load(good, weights_only=True)
    payload["config"] = {"name": "tiny", "width": 5}
    torch.save(payload, wrong)
    with pytest.raises(MitodetError, match="weights do not fit"):
        load_checkpoint(wrong)
