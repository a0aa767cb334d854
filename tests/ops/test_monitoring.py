"""Prometheus config, alert rules (promtool) and the Grafana dashboard agree with the contract."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool"}
PROMQL_WORDS |= {"offset", "inf", "nan"}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
# Gauges each replica reports in full (every replica counts the same table): a sum across
# replicas multiplies them by the replica count, so the dashboard combines them with max.
WHOLE_TABLE_GAUGES = ("outbox_backlog_events", "housekeeping_table_rows")
REQUIRED_ALERTS = {
    "ServiceDown",
    "High5xxRate",
    "HighP99Latency",
    "OutboxBacklogGrowing",
    "EventsDeadLettered",
    "CircuitBreakerOpen",
    "SeatHoldConflictSpike",
}


def run(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (labels, strings, ranges, grouping dropped)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    tokens = re.findall(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr)
    return {t for t in tokens if t.lower() not in PROMQL_WORDS}


def base_metric(name: str, known: set[str]) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in known:
            return name.removesuffix(suffix)
    return name


def dashboard_problems(dashboard: dict[str, Any], known: set[str]) -> list[str]:
    """Panels without a query, and queries naming metrics that no contract lists."""
    problems = []
    panels = [p for p in dashboard.get("panels", []) if p.get("type") != "row"]
    if not panels:
        problems.append("the dashboard has no panels")
    for panel in panels:
        exprs = [t.get("expr", "") for t in panel.get("targets", [])]
        if not exprs or not all(exprs):
            problems.append(f"panel {panel.get('title')!r} has a target without a query")
        for expr in exprs:
            names = {base_metric(n, known) for n in metric_names(expr)}
            if not names:
                problems.append(f"panel {panel.get('title')!r}: {expr!r} names no metric")
            for name in sorted(names - known):
                problems.append(f"panel {panel.get('title')!r}: {name} is not in docs/contracts.md")
    return problems


@pytest.fixture(scope="module")
def dashboard(repo_root: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (repo_root / "monitoring/grafana/dashboards/movie-booking.json").read_text()
    )
    return loaded


def test_prometheus_config_is_valid(promtool: str, repo_root: Path) -> None:
    result = run(promtool, "check", "config", "monitoring/prometheus.yml", cwd=repo_root)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_every_service_and_exporter(repo_root: Path, contract_services: list[Any]) -> None:
    config = yaml.safe_load((repo_root / "monitoring/prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    expected = {f"{svc.name}:{svc.port}" for svc in contract_services}
    expected |= {"rabbitmq:15692", "redis-exporter:9121", "postgres-exporter:9187", "nginx-exporter:9113"}
    assert expected - targets == set()


def test_alert_rules_are_valid_and_complete(promtool: str, repo_root: Path, known_metrics: set[str]) -> None:
    result = run(promtool, "check", "rules", "monitoring/alerts.yml", cwd=repo_root)
    assert result.returncode == 0, result.stdout + result.stderr
    rules = [
        r
        for g in yaml.safe_load((repo_root / "monitoring/alerts.yml").read_text())["groups"]
        for r in g["rules"]
    ]
    assert REQUIRED_ALERTS - {r["alert"] for r in rules} == set()
    for rule in rules:
        names = {base_metric(n, known_metrics) for n in metric_names(rule["expr"])} - {"up"}
        assert names <= known_metrics, f"{rule['alert']} reads metrics not in docs/contracts.md: {names}"


def test_alert_rules_unit_tests_pass(promtool: str, repo_root: Path) -> None:
    tests = sorted(str(p.relative_to(repo_root)) for p in (repo_root / "monitoring/tests").glob("*.yml"))
    assert tests, "no promtool rule tests in monitoring/tests/"
    result = run(promtool, "test", "rules", *tests, cwd=repo_root)
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname:\s*(\w+)", " ".join(Path(repo_root / t).read_text() for t in tests)))
    assert len(tested & REQUIRED_ALERTS) >= 2


def test_a_broken_rules_file_fails_promtool(promtool: str, repo_root: Path, tmp_path: Path) -> None:
    text = (repo_root / "monitoring/alerts.yml").read_text()
    broken = text.replace("circuit_breaker_state) == 2", "circuit_breaker_state) === 2")
    assert broken != text
    (tmp_path / "alerts.yml").write_text(broken)
    result = run(promtool, "check", "rules", "alerts.yml", cwd=tmp_path)
    assert result.returncode != 0 and "CircuitBreakerOpen" in result.stdout + result.stderr


def test_a_rule_test_expecting_the_wrong_alert_fails(promtool: str, repo_root: Path, tmp_path: Path) -> None:
    shutil.copy(repo_root / "monitoring/alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "tests").mkdir()
    text = (
        (repo_root / "monitoring/tests/alerts_test.yml")
        .read_text()
        .replace("job: booking-service", "job: movie")
    )
    (tmp_path / "tests/alerts_test.yml").write_text(text)
    result = run(promtool, "test", "rules", "tests/alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0, result.stdout


def test_dashboard_queries_name_only_contract_metrics(
    dashboard: dict[str, Any], known_metrics: set[str]
) -> None:
    assert dashboard_problems(dashboard, known_metrics) == []


def test_dashboard_shows_the_funnel_and_golden_signals(
    dashboard: dict[str, Any], known_metrics: set[str]
) -> None:
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for step in ('seat_holds_total{outcome="taken"}', 'bookings_total{status="pending"}'):
        assert step in exprs
    for step in ('payments_total{result="succeeded"}', 'bookings_total{status="confirmed"}'):
        assert step in exprs
    for signal in ("http_requests_total", "http_request_duration_seconds_bucket", 'status=~"5.."'):
        assert signal in exprs
    datasources = {
        t["datasource"]["uid"] for p in dashboard["panels"] if "targets" in p for t in p["targets"]
    }
    assert datasources == {"prometheus"}


def summed_whole_table_gauges(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t.get("expr", "") for p in dashboard.get("panels", []) for t in p.get("targets", [])]
    return [e for e in exprs if re.search(r"\bsum\b", e) and any(g in e for g in WHOLE_TABLE_GAUGES)]


def test_dashboard_never_sums_a_gauge_every_replica_reports_in_full(dashboard: dict[str, Any]) -> None:
    assert summed_whole_table_gauges(dashboard) == []
    assert summed_whole_table_gauges({"panels": [{"targets": [{"expr": "sum(outbox_backlog_events)"}]}]})


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus(repo_root: Path) -> None:
    base = repo_root / "monitoring/grafana/provisioning"
    datasource = yaml.safe_load((base / "datasources/prometheus.yml").read_text())["datasources"][0]
    assert (datasource["uid"], datasource["url"]) == ("prometheus", "http://prometheus:9090")
    provider = yaml.safe_load((base / "dashboards/movie-booking.yml").read_text())["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_a_broken_dashboard_is_caught(dashboard: dict[str, Any], known_metrics: set[str]) -> None:
    broken = json.loads(json.dumps(dashboard))
    panel = next(p for p in broken["panels"] if p.get("targets"))
    panel["targets"][0]["expr"] = "sum(rate(booking_attempts_total[5m]))"
    problems = dashboard_problems(broken, known_metrics)
    assert any("booking_attempts_total is not in docs/contracts.md" in p for p in problems), problems


def test_metric_names_extraction() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (service, le) (rate(x_bucket{a="b"}[5m]))) / sum(y_total offset 5m)'
    )
    assert metric_names(expr) == {"x_bucket", "y_total"}
    assert metric_names('sum(increase(seat_holds_total{outcome="taken"}[$__range]))') == {"seat_holds_total"}
