"""The CI's minimum-version pins stay in step with pyproject.toml's lower bounds."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_min_version_pins_match_the_lower_bounds():
    deps = (ROOT / "pyproject.toml").read_text()
    pins = dict(re.findall(r"^(\w+)==([\d.]+)$", (ROOT / ".ci" / "min-versions.txt").read_text(), re.M))
    assert set(pins) == {"numpy", "scipy", "pandas"}
    for name, version in pins.items():
        lower = re.search(rf'"{name}>=([\d.]+)"', deps).group(1)
        # the pin is the newest patch release of the lower bound's minor version
        assert version.split(".")[:2] == lower.split(".")[:2], (name, version, lower)
    run = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    test_cmd = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest -q"
    assert test_cmd in run and test_cmd in readme
