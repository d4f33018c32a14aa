"""deploy/prometheus/ and deploy/grafana/ checked with the real promtool (Debian's `prometheus`
package; `make test` installs it): the alert rules pass their unit tests, every alert is
tested, README's "Alert on" list is covered, and the rules and the dashboard query only
metrics that vodhub really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import adapters.inbound.http.metrics  # noqa: F401  (registers the api's and the pipeline's metrics)
from adapters.outbound.metrics import UnfinishedVideosCollector

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
RULE_TESTS = PROMETHEUS / "alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "vodhub.json"
README = ROOT / "README.md"

# README's "Alert on" list, item by item, and the alert that covers it.
README_ALERTS = {
    "`/health/ready` failing": "VodhubApiNotReady",
    "relay lag": "VodhubRelayLagGrowing",
    "consumer lag on `video-processing`": "VodhubConsumerLagHigh",
    "`video-uploaded-events.dlq`": "VodhubMessagesDeadLettered",
    "videos stuck in `processing`": "VodhubVideoStuckProcessing",
    "5xx rates": "VodhubHttp5xxRate",
    "upload latencies": "VodhubUploadLatencyHigh",
}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
METRIC = re.compile(r"\bvodhub_[a-z0-9_]+")


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("promtool")
    assert executable, "promtool is missing: `make test` installs Debian's prometheus package"
    return subprocess.run([executable, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def exported_metrics() -> set[str]:
    """The series names vodhub's processes expose, from the metric definitions themselves."""
    families = [*REGISTRY.collect(), *UnfinishedVideosCollector(dict).collect()]
    return {family.name + suffix for family in families if family.name.startswith("vodhub_")
            for suffix in SUFFIXES[family.type]}


def alerts() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def dashboard_queries() -> Iterator[tuple[str, str]]:
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def test_the_alert_rules_pass_their_promtool_unit_tests() -> None:
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_prometheus_config_is_valid_and_loads_the_rules() -> None:
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["rule_files"] == [RULES.name]


def test_every_alert_is_shown_firing_by_a_unit_test() -> None:
    firing = {case["alertname"] for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert {rule["alert"] for rule in alerts()} <= firing


def test_readme_alert_on_list_is_covered() -> None:
    alert_on = re.search(r"\*\*Alert on:\*\*(.*?)(?:\n\n|\n- )", README.read_text(), re.S).group(1)
    names = {rule["alert"] for rule in alerts()}
    for item, alert in README_ALERTS.items():
        assert item in " ".join(alert_on.split()), f"README no longer lists {item!r}"
        assert alert in names, item
    assert all(rule["labels"]["severity"] in ("warning", "critical") for rule in alerts())


def test_alerts_and_dashboard_query_only_metrics_vodhub_exports() -> None:
    exported = exported_metrics()
    assert {"vodhub_http_requests_total", "vodhub_dead_lettered_messages_total", "vodhub_videos_unfinished"} <= exported
    for rule in alerts():
        assert set(METRIC.findall(rule["expr"])) <= exported, rule["alert"]
    for title, expr in dashboard_queries():
        assert set(METRIC.findall(expr)) <= exported, title


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses PromQL in rule files: check each query as a recording rule, with
    # Grafana's $__rate_interval replaced by a duration as Grafana itself does.
    queries = [expr.replace("$__rate_interval", "5m") for _, expr in dashboard_queries()]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"vodhub:dashboard_query_{index}", "expr": expr} for index, expr in enumerate(queries)
    ]}]}
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", "queries.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_dashboard_has_the_panels_an_operator_needs() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {"Request rate by route", "Errors by route (5xx share)", "Latency by route (p95)", "Uploads",
            "Upload latency (p50, p95)", "Processing outcomes", "Transcode time per rung (p50)", "Consumer lag",
            "Relay lag", "Dead-lettered messages", "Videos waiting", "Longest wait", "Time to playable (p50, p95)",
            "Time to ready (p50, p95)"} <= titles
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    # Any Prometheus will do: panels use the dashboard's data source variable, not a fixed uid.
    (variable,) = dashboard["templating"]["list"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${" + variable["name"] + "}", panel["title"]
            assert panel["targets"], panel["title"]
