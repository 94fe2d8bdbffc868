"""The Prometheus scrape config, alert rules and Grafana dashboard in infra/ hold
together: valid structure, every series they use is defined in streams/metrics.py,
scrape targets are services of docker-compose.yml, runbook links resolve.
(promtool is not available here; this checks what can be checked without it.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.metrics import MetricWrapperBase

import streams.metrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "infra" / "prometheus"
DASHBOARD = ROOT / "infra" / "grafana" / "kronwheel-dashboard.json"
SERIES = re.compile(r"\bkronwheel_[a-z0-9_]+")
# What an alert must watch, by the issue: p99 lateness, DLQ growth, lag, restore time.
REQUIRED_ALERT_SERIES = {
    "kronwheel_firing_lateness_seconds_bucket",
    "kronwheel_dead_letters_total",
    "kronwheel_consumer_lag_messages",
    "kronwheel_restore_duration_seconds_bucket",
}
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}


def defined_series() -> set[str]:
    """Every sample name streams/metrics.py can export."""
    names: set[str] = set()
    for value in vars(streams.metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.update(family.name + s for s in SAMPLE_SUFFIXES[family.type])
    return names


def load_yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule for group in load_yaml(PROMETHEUS / "alerts.yml")["groups"] for rule in group["rules"]
    ]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def github_anchors(markdown: str) -> set[str]:
    headings = re.findall(r"^#+ (.+)$", markdown, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_series_used_is_defined_in_streams_metrics() -> None:
    defined = defined_series()
    assert "kronwheel_firings_total" in defined  # the oracle itself works
    used = {
        name
        for expr in [*(r["expr"] for r in alert_rules()), *dashboard_exprs()]
        for name in SERIES.findall(expr)
    }
    assert used, "no kronwheel series found in the alerts and dashboard"
    assert used <= defined, f"not defined in streams/metrics.py: {sorted(used - defined)}"


def test_alert_rules_are_well_formed_and_cover_the_issue() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    runbook = github_anchors((ROOT / "docs" / "runbook.md").read_text())
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert isinstance(rule["expr"], str)
        assert rule["expr"].strip()
        assert rule["labels"]["severity"] in {"page", "warning"}
        assert rule["annotations"]["summary"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"])
        path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert path == "docs/runbook.md"
        assert anchor in runbook, f"{rule['alert']}: no runbook section #{anchor}"
    watched = {name for rule in rules for name in SERIES.findall(rule["expr"])}
    assert watched >= REQUIRED_ALERT_SERIES


def test_scrape_config_targets_every_compose_role() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS / rule_file).is_file()
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    compose = load_yaml(ROOT / "docker-compose.yml")["services"]
    roles = {name for name, s in compose.items() if s.get("image") == "kronwheel:latest"}
    roles -= {"init-topics"}
    assert {target.split(":")[0] for target in targets} == roles
    assert "api:8080" in targets


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    provisioning = ROOT / "infra" / "grafana" / "provisioning"
    [source] = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    [provider] = load_yaml(provisioning / "dashboards" / "kronwheel.yml")["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"]
    assert dashboard["title"] == "kronwheel"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["type"] == "prometheus"
        assert panel["targets"]
        assert {t["refId"] for t in panel["targets"]} == {
            chr(ord("A") + i) for i in range(len(panel["targets"]))
        }
