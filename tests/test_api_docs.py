"""The example of docs/api.md runs as written, on a real patch and the bundled slide."""

from __future__ import annotations

import importlib.util
import os
import re

from tests.conftest import ROOT, need


def test_the_api_example_runs(shared_data, tmp_path, monkeypatch):
    need(shared_data / "icpr2012_patches" / "images" / "A00_01_0.jpg")
    text = (ROOT / "docs" / "api.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(ROOT)
    env = {"DATA": shared_data, "OUT": tmp_path, "_has_pandas": importlib.util.find_spec("pandas") is not None}
    exec(compile(code, "docs/api.md", "exec"), env)
    assert env["slide"].summary["mitotic_figures"] == len(env["slide"].mitotic_figures)
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in env["written"])
    assert any(n.endswith(".mitotic-figures.json") for n in os.listdir(tmp_path))
