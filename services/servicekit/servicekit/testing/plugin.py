"""pytest plugin loaded for the whole suite (``-p servicekit.testing.plugin``)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """System tests need the running system; they are selected with ``-m system``."""
    markexpr = config.getoption("markexpr", "") or ""
    if "system" in markexpr:
        return
    skip = pytest.mark.skip(reason="system test: run through scripts/test.sh (needs the gateway)")
    for item in items:
        if "system" in item.keywords:
            item.add_marker(skip)
