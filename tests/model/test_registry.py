import pytest

from mitodet.errors import MitodetError
from mitodet.model import create_model, list_models
from mitodet.model.resnet import P4ResNet, PlainResNet


def test_names_and_classes():
    assert {"paper", "fast", "tiny", "plain-paper", "plain-fast"} <= set(list_models())
    assert isinstance(create_model("fast"), P4ResNet)
    assert isinstance(create_model("plain-fast"), PlainResNet)


def test_overrides_are_kept_and_rebuild_the_model():
    m = create_model("tiny", width=3, blocks_post=2)
    assert m.config == {"name": "tiny", "width": 3, "blocks_post": 2}
    assert m.receptive_field == 16 + 8  # one more basic block after the pool: 2 convs x 4
    again = create_model(**m.config)
    assert [p.shape for p in again.parameters()] == [p.shape for p in m.parameters()]


def test_plain_has_the_same_cost_as_p4():
    from mitodet.model.summary import flops_per_output_pixel

    p4, plain = flops_per_output_pixel(create_model("fast")), flops_per_output_pixel(create_model("plain-fast"))
    assert abs(p4 - plain) / p4 < 0.01


@pytest.mark.parametrize("bad", [{"width": 0}, {"block": "dense"}, {"colour": 1}])
def test_bad_settings_are_mitodet_errors(bad):
    with pytest.raises(MitodetError, match="bad setting"):
        create_model("tiny", **bad)


def test_unknown_name():
    with pytest.raises(MitodetError, match="unknown model 'huge'.*fast"):
        create_model("huge")
