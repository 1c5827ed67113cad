from typer.testing import CliRunner

from mitodet.cli.main import app
from mitodet.model import create_model, save_checkpoint
from mitodet.model.summary import flops_per_output_pixel, flops_per_patch, summarize


def test_flops_by_hand_for_tiny():
    s = summarize(create_model("tiny"))  # width 2 fields before the pool, 4 after
    # stride-1 layers run 4x per output cell: lift 3->8ch, block 8->8 x2 (3x3); after the pool:
    # block 8->16 (3x3) and 16->16 (3x3) + 1x1 projection 8->16; head 1x1 4->2.
    before = 3 * 8 * 9 + 2 * (8 * 8 * 9)
    after = 8 * 16 * 9 + 16 * 16 * 9 + 8 * 16 + 4 * 2
    assert s["flops_per_output_pixel"] == 2 * (4 * before + after)
    assert s["params"] == sum(p.numel() for p in create_model("tiny").parameters())
    assert s["receptive_field"] == 16 and s["stride"] == 2


def test_dense_is_cheaper_per_cell_than_patches():
    m = create_model("fast")
    assert flops_per_patch(m) > 10 * flops_per_output_pixel(m)


def test_cli_list_summary_export(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["model", "list"])
    assert r.exit_code == 0 and "paper" in r.output and "plain-fast" in r.output
    r = runner.invoke(app, ["model", "summary", "tiny", "--set", "width=3"])
    assert r.exit_code == 0 and "receptive field" in r.output and "16 x 16" in r.output
    ckpt = save_checkpoint(tmp_path / "t.pt", create_model("tiny"))
    r = runner.invoke(app, ["model", "export", str(ckpt), "--onnx", str(tmp_path / "t.onnx")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "t.onnx").stat().st_size > 1000 and "ONNX Runtime" in r.output


def test_cli_check_on_a_real_image(shared_data, tmp_path):
    from tests.conftest import need

    img = need(shared_data / "icpr2012_patches" / "images" / "A00_01_0.jpg")
    runner = CliRunner()
    r = runner.invoke(app, ["model", "check", "tiny", "--image", str(img), "--size", "64"])
    assert r.exit_code == 0, r.output
    assert r.output.count(" ok ") == 5 and "FAILED" not in r.output
    r = runner.invoke(app, ["model", "check", "plain-tiny", "--image", str(img), "--size", "64"])
    assert r.exit_code == 1 and "FAILED" in r.output  # the ablation is not rotation invariant
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    r = runner.invoke(app, ["model", "check", "tiny", "--image", str(bad)])
    assert r.exit_code != 0 and "not a readable image" in str(r.exception)
