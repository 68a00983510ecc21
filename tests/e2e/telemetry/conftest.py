"""Fixtures for the telemetry suite: Debian's prometheus and promtool (installed when missing),
the session PostgreSQL of tests/e2e/rotation (loaded by path, not imported as `conftest`), and
a durable Tessera node with a file audit device."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

E2E = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(E2E))


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


_rotation = _load("_telemetry_rotation_conftest", E2E / "rotation" / "conftest.py")
postgres = _rotation.postgres


@pytest.fixture(scope="session")
def prometheus_bin():
    """prometheus and promtool from Debian's package; installed once, fast when present."""
    if not (shutil.which("prometheus") and shutil.which("promtool")):
        subprocess.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus",
                       shell=True, check=True, stdout=subprocess.DEVNULL)
    return {"prometheus": shutil.which("prometheus"), "promtool": shutil.which("promtool")}
