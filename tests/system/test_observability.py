"""Every metric the Grafana dashboard and the alert rules read is exposed by a running service."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx
import pytest
import yaml

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
SERVICE_URLS = [u for u in os.environ.get("SERVICE_URLS", "").split(",") if u] or [
    f"http://127.0.0.1:{port}" for port in range(8001, 8006)
]
# Exporters in compose provide these; the services never do.
EXPORTER_PREFIXES = ("up", "nginx_", "redis_", "pg_", "rabbitmq_", "process_", "python_")
PROMQL_WORDS = {
    "sum", "rate", "irate", "increase", "histogram_quantile", "by", "without", "max", "min", "avg",
    "count", "le", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
    "clamp_min", "clamp_max", "abs", "time", "vector", "topk", "bottomk", "delta", "deriv", "offset",
    "max_over_time", "min_over_time", "avg_over_time", "absent", "scalar", "label_replace", "changes",
}  # fmt: skip


def _names(expr: str) -> set[str]:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    tokens = re.findall(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr)
    return {t for t in tokens if t.lower() not in PROMQL_WORDS and not t.isdigit()}


def _queried() -> set[str]:
    names: set[str] = set()
    for dashboard in (ROOT / "monitoring/grafana/dashboards").glob("*.json"):
        for panel in json.loads(dashboard.read_text()).get("panels", []):
            for target in panel.get("targets", []):
                names |= _names(target.get("expr", ""))
    for group in yaml.safe_load((ROOT / "monitoring/alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            names |= _names(str(rule["expr"]))
    return {n for n in names if not n.startswith(EXPORTER_PREFIXES)}


async def _exposed() -> set[str]:
    exposed: set[str] = set()
    async with httpx.AsyncClient(timeout=10) as client:
        for url in SERVICE_URLS:
            text = (await client.get(f"{url}/metrics")).text
            for line in text.splitlines():
                if line.startswith("# TYPE "):
                    name, kind = line.split()[2:4]
                    exposed.add(name)
                    suffixes = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_total",)}
                    exposed |= {name + s for s in suffixes.get(kind, ())}
                elif line and not line.startswith("#"):
                    exposed.add(line.split("{")[0].split()[0])
    return exposed


async def test_every_dashboard_and_alert_metric_is_exposed_by_a_service() -> None:
    queried, exposed = _queried(), await _exposed()
    assert queried, "no metric names found in the dashboard and rules"
    assert not (queried - exposed), f"queried but exposed by no service: {sorted(queried - exposed)}"
