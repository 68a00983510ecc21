"""Fixtures of the edge-cache tests: a durable central server of their own, started and
initialized for each test (a test stops and restarts it to make an outage)."""

from __future__ import annotations

import pytest

from e2e_servers import DurableNode


@pytest.fixture
def central(tmp_path):
    (tmp_path / "central").mkdir()
    node = DurableNode(tmp_path / "central")
    node.start()
    node.initialize()
    yield node
    node.stop()
