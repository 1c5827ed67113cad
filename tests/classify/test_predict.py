import numpy as np
import pytest
import torch
from PIL import Image

from mitodet.classify.predict import AtypicalClassifier
from mitodet.errors import MitodetError
from mitodet.model import create_model, save_checkpoint
from mitodet.resources import ATYPICAL_WEIGHTS


@pytest.fixture(scope="module")
def clf():
    return AtypicalClassifier.from_checkpoint()


def _rgb(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_bundled_classifier_is_calibrated():
    c = AtypicalClassifier.from_checkpoint(ATYPICAL_WEIGHTS)
    assert 0 < c.threshold < 1 and c.mpp == 0.25 and c.input == 96 and len(c.sha256) == 64


@pytest.mark.parametrize("source", ["atnorm_crops", "midog_crops"])
def test_atypical_crops_score_higher_than_normal_ones(clf, source, request):
    crops = request.getfixturevalue(source)
    mpp = 0.24 if source == "atnorm_crops" else 0.23
    atyp = [clf.crop(_rgb(f), mpp) for f in crops[True]]
    norm = [clf.crop(_rgb(f), mpp) for f in crops[False]]
    assert np.mean(atyp) > np.mean(norm)  # on average over 12 + 12 real crops, never an exact value


def test_p4_classifier_is_invariant_to_90_degree_rotations():
    torch.manual_seed(0)
    m = create_model("atypical-tiny").eval()
    for mod in m.modules():  # random batch-norm statistics, so the check is not trivially zero
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5)
    x = torch.rand(2, 3, 40, 40)
    with torch.no_grad():
        y = m(x)
        for k in (1, 2, 3):
            assert torch.allclose(m(torch.rot90(x, k, (2, 3))), y, atol=1e-5)
        assert not torch.allclose(m(x.flip(-1)), y, atol=1e-3)  # P4, not mirror-invariant: TTA averages the mirror


def test_around_points_reads_the_figure_at_the_model_spacing(clf, atnorm_crops):
    # a point of a larger image gives the crop's answer: the same window at the model spacing, up
    # to the resampling phase (a sub-pixel shift moves P(atypical) by a few hundredths)
    diffs, same = [], 0
    for f in atnorm_crops[True] + atnorm_crops[False]:
        im = _rgb(f)
        big = np.pad(im, ((200, 200), (300, 300), (0, 0)), mode="reflect")
        p = clf.around(big, 0.24, [(300 + 63.5, 200 + 63.5), (20.0, 20.0)])
        q = clf.crop(im, 0.24)
        diffs.append(abs(p[0] - q))
        same += clf.label(p[0]) == clf.label(q)
    assert np.mean(diffs) < 0.05 and same >= len(diffs) - 2
    assert clf.around(big, 0.24, []).shape == (0,)


def test_a_detector_checkpoint_is_refused_as_a_classifier(tmp_path):
    save_checkpoint(tmp_path / "det.pt", create_model("tiny"), mpp=0.25, threshold=0.5)
    with pytest.raises(MitodetError, match="not an atypical-vs-normal classifier"):
        AtypicalClassifier.from_checkpoint(tmp_path / "det.pt")
