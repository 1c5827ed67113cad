import json

from typer.testing import CliRunner

from mitodet.cli.main import app
from tests.conftest import need

runner = CliRunner()


def test_evaluate_command_writes_json_and_plot(shared_data, tmp_path):
    d = need(shared_data / "formats" / "midog2025_t1_eval")
    r = runner.invoke(
        app,
        [
            "evaluate",
            "--truth",
            str(d / "ground_truth.json"),
            "--pred",
            str(d / "predictions.json"),
            "--out",
            str(tmp_path),
        ],
        env={"COLUMNS": "200"},
    )
    assert r.exit_code == 0, r.output
    assert "tumor_0" in r.output and "0.4615" in r.output
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc["aggregates"]["f1_score"] == json.loads((d / "metrics.json").read_text())["aggregates"]["f1_score"]
    assert (tmp_path / "pr_froc.png").stat().st_size > 1000
    r = runner.invoke(
        app,
        [
            "evaluate",
            "--truth",
            str(d / "ground_truth.json"),
            "--pred",
            str(d / "predictions.json"),
            "--out",
            str(tmp_path),
            "--strict",
        ],
    )
    assert r.exit_code != 0 and "millimetres" in str(r.exception)
