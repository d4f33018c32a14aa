"""docker-compose.yml, Dockerfile and deploy/ checked without a Docker engine: the compose file
validates against the Compose Specification's JSON schema, every image is pinned, start-up
ordering can converge (each awaited condition can actually be met), and the gateway mounts
the very deploy/nginx.conf that tests/e2e/test_nginx_gateway.py runs.

tests/fixtures/compose-spec.json is schema/compose-spec.json of github.com/compose-spec/compose-spec
(commit 00655e2222608fa6eaecdf12ac5195889ca2244a), vendored unchanged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = ROOT / "tests" / "fixtures" / "compose-spec.json"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


def interpolated(value: object) -> object:
    """What Compose sees with no variables set: `${NAME:-default}` → default, `${NAME}` → ''."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda match: match.group("default") or "", value)
    if isinstance(value, dict):
        return {key: interpolated(item) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolated(item) for item in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict:
    return interpolated(yaml.safe_load(COMPOSE_FILE.read_text()))


def test_compose_file_validates_against_the_compose_specification(compose):
    from jsonschema import Draft7Validator  # a dev dependency: see pyproject.toml

    schema = json.loads(SCHEMA_FILE.read_text())
    Draft7Validator.check_schema(schema)
    errors = sorted(Draft7Validator(schema).iter_errors(compose), key=lambda error: list(error.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors)


def test_the_vendored_schema_is_the_compose_specification():
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["title"] == "Compose Specification"
    assert {"service", "healthcheck", "deployment", "network", "volume"} <= set(schema["definitions"])


def test_every_image_tag_is_pinned(compose):
    for name, service in compose["services"].items():
        image = service.get("image")
        assert image, f"{name} has no image"
        repository, _, tag = image.rpartition("/")[2].partition(":")
        assert repository and tag and tag != "latest", f"{name}: image {image!r} is not pinned to a tag"


def test_the_whole_stack_is_there(compose):
    services = compose["services"]
    assert {"postgres", "redis", "kafka", "s3", "s3-bucket", "api", "worker", "relay", "projector", "analytics",
            "gateway"} <= set(services)
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert set(services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    for process in ("api", "worker", "relay", "projector", "analytics"):
        assert services[process]["command"] == [process]
        environment = services[process]["environment"]
        assert environment["VODHUB_DATABASE_URL"].startswith("postgresql://")
        assert environment["VODHUB_KAFKA_BOOTSTRAP_SERVERS"] and environment["VODHUB_S3_ENDPOINT"]
    # One signing key for every api replica: tokens and signed media URLs verify on any of them.
    assert services["api"]["environment"]["VODHUB_JWT_PRIVATE_KEY"].startswith("/var/lib/vodhub/keys/")
    published = [service for service in services.values() if service.get("ports") and not service.get("profiles")]
    assert published == [services["gateway"]], "only the gateway is reachable from outside"
    for name, service in services.items():
        if service.get("profiles"):  # opt-in extras (observability) are reachable from this host only
            assert all(port.startswith("127.0.0.1:") for port in service.get("ports", [])), name


def test_the_observability_profile_adds_prometheus_and_grafana_with_the_repository_config(compose):
    services = compose["services"]
    extras = {name for name, service in services.items() if service.get("profiles")}
    assert extras >= {"prometheus", "grafana"}
    for name in extras:
        assert services[name]["profiles"] == ["observability"], name
    mounts = {
        (name, target): (ROOT / source).resolve()
        for name in ("prometheus", "grafana")
        for source, target, *_ in (volume.split(":") for volume in services[name]["volumes"])
        if source.startswith(".")
    }
    config = services["prometheus"]["command"][0].removeprefix("--config.file=")
    config_dir, config_name = config.rsplit("/", 1)
    assert (mounts[("prometheus", config_dir)] / config_name).is_file()
    rules = yaml.safe_load((mounts[("prometheus", config_dir)] / config_name).read_text())["rule_files"]
    assert all((mounts[("prometheus", config_dir)] / rule).is_file() for rule in rules)
    assert "backend" in services["prometheus"]["networks"], "the processes are reachable only on the backend network"
    provisioning = mounts[("grafana", "/etc/grafana/provisioning")]
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "vodhub.yml").read_text())["providers"][0]
    dashboards = mounts[("grafana", provider["options"]["path"])]
    assert (dashboards / "vodhub.json").is_file()
    assert set(services["grafana"]["networks"]) & set(services["prometheus"]["networks"])


def test_the_observability_profile_sends_traces_through_a_collector_to_jaeger(compose):
    services = compose["services"]
    collector, jaeger = services["otel-collector"], services["jaeger"]
    assert collector["profiles"] == jaeger["profiles"] == ["observability"]
    source, target, _ = collector["volumes"][0].split(":")
    assert collector["command"] == [f"--config={target}"]
    config = yaml.safe_load((ROOT / source).read_text())
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    assert config["exporters"]["otlp/jaeger"]["endpoint"] == "jaeger:4317"
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["otlp/jaeger"]
    assert "backend" in collector["networks"] and "backend" in jaeger["networks"]
    assert jaeger["ports"] == ["127.0.0.1:16686:16686"]
    processes = [service for service in services.values() if service.get("image", "").startswith("vodhub:")]
    # Unset by default (tracing off); README's "Observe" sets it to the collector.
    assert processes and all("VODHUB_OTLP_ENDPOINT" in service["environment"] for service in processes)


def test_start_up_ordering_can_converge(compose):
    services = compose["services"]
    graph = {name: dict(service.get("depends_on") or {}) for name, service in services.items()}
    for name, dependencies in graph.items():
        for dependency, rule in dependencies.items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            condition = rule["condition"]
            target = services[dependency]
            if condition == "service_healthy":
                check = target.get("healthcheck") or {}
                waits = f"{name} waits for {dependency} to be healthy, which has no health check"
                assert check.get("test") and not check.get("disable"), waits
            elif condition == "service_completed_successfully":
                assert target.get("restart") == "no", f"{dependency} is a one-shot job; it must not restart"
    visiting, done = set(), set()

    def visit(name: str) -> None:
        assert name not in visiting, f"dependency cycle through {name}"
        if name in done:
            return
        visiting.add(name)
        for dependency in graph[name]:
            visit(dependency)
        visiting.discard(name)
        done.add(name)

    for name in graph:
        visit(name)
    api_needs = graph["api"]
    assert {"postgres", "redis", "kafka", "s3-bucket", "jwt-key"} <= set(api_needs)
    assert graph["gateway"]["api"]["condition"] == "service_healthy"
    for process in ("worker", "relay", "projector", "analytics"):
        assert graph[process]["api"]["condition"] == "service_healthy"
    for backend in ("postgres", "redis", "kafka", "s3", "api", "gateway"):
        assert services[backend]["healthcheck"]["test"], f"{backend} has no health check"


def test_the_gateway_mounts_deploy_nginx_conf(compose):
    gateway = compose["services"]["gateway"]
    assert gateway["image"].startswith("nginx:")
    mounts = [volume.split(":") for volume in gateway["volumes"]]
    sources = {target: (ROOT / source).resolve() for source, target, *_ in mounts if source.startswith(".")}
    assert sources["/etc/nginx/nginx.conf"] == NGINX_CONF.resolve() and NGINX_CONF.is_file()
    conf = NGINX_CONF.read_text()
    api_port = compose["services"]["api"]["environment"]["VODHUB_PORT"]
    assert f"server api:{api_port} " in conf, "the gateway's upstream is the api service on its port"
    container_ports = [port.rsplit(":", 1)[1] for port in gateway["ports"]]
    assert container_ports == ["80", "443"]
    assert "listen 80;" in conf and "listen 443 ssl;" in conf
    probe = " ".join(gateway["healthcheck"]["test"])
    assert "https://127.0.0.1/health/live" in probe


def test_the_gateway_gets_the_certificate_that_the_cert_job_makes(compose):
    services = compose["services"]
    conf = NGINX_CONF.read_text()
    gateway, job = services["gateway"], services["gateway-cert"]
    tls_volume = next(volume.split(":")[0] for volume in gateway["volumes"] if ":/etc/nginx/tls" in volume)
    assert f"{tls_volume}:/etc/nginx/tls" in job["volumes"] and job["command"][0] == "/etc/nginx/tls"
    assert "ssl_certificate /etc/nginx/tls/cert.pem;" in conf and "ssl_certificate_key /etc/nginx/tls/key.pem;" in conf
    assert gateway["depends_on"]["gateway-cert"]["condition"] == "service_completed_successfully"
    script = next(volume.split(":")[0] for volume in job["volumes"] if volume.startswith("./"))
    assert (ROOT / script).is_file() and job["entrypoint"][-1].endswith(Path(script).name)
    for route in ("location /api/", "location /media/", "location /.well-known/", "location /health/",
                  "auth_request ", "limit_req ", "proxy_cache media;", "client_max_body_size 10g;",
                  "proxy_request_buffering off;", "proxy_pass_request_body off;"):
        assert route in conf, f"deploy/nginx.conf lost {route!r}"


def test_the_dockerfile_is_multi_stage_non_root_and_locked():
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, flags=re.MULTILINE | re.IGNORECASE)
    assert len(stages) >= 2, "multi-stage build"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, flags=re.MULTILINE).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), base
    assert "uv sync --frozen --no-dev" in text, "dependencies come from uv.lock, unresolved"
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image runs as an unprivileged user"
    assert re.search(r'^ENTRYPOINT \["vodhub"\]', text, flags=re.MULTILINE)


def test_the_docker_build_context_holds_what_the_dockerfile_copies():
    allowed = {line[1:].rstrip("/") for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")}
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            *sources, _ = line.split()[1:]
            for source in sources:
                assert source.rstrip("/") in allowed, f".dockerignore leaves {source} out of the build context"
                assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"


def test_the_notifier_runs_and_shares_the_webhook_secret_key_with_the_api(compose):
    services = compose["services"]
    assert services["notifier"]["command"] == ["notifier"]
    assert services["notifier"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert services["webhooks-key"]["restart"] == "no"
    assert services["api"]["depends_on"]["webhooks-key"]["condition"] == "service_completed_successfully"
    for process in ("api", "notifier"):
        assert "webhooks-key:/var/lib/vodhub/webhooks:ro" in services[process]["volumes"]
        assert services[process]["environment"]["VODHUB_WEBHOOKS_SECRET_KEY"] == "/var/lib/vodhub/webhooks/secret.key"


VODHUB_PROCESSES = ("api", "worker", "relay", "projector", "notifier", "analytics")


def test_only_the_api_holds_the_signing_key(compose):
    services = compose["services"]
    for name, service in services.items():
        holds_key = any(str(volume).startswith("jwt-key:") for volume in service.get("volumes") or [])
        assert holds_key == (name in ("api", "jwt-key")), name
        assert "VODHUB_JWT_PRIVATE_KEY" not in (service.get("environment") or {}) or name == "api", name


def test_each_process_has_its_own_database_role_and_s3_identity(compose):
    import json

    services = compose["services"]
    roles = {process: services[process]["environment"]["VODHUB_DATABASE_URL"].split("://")[1].split(":")[0]
             for process in VODHUB_PROCESSES}
    assert roles == {process: f"vodhub_{process}" for process in VODHUB_PROCESSES}
    roles_sql = (ROOT / "deploy" / "postgres" / "roles.sql").read_text()
    for role in roles.values():
        assert f"CREATE ROLE {role} LOGIN" in roles_sql
    postgres_mounts = services["postgres"]["volumes"]
    assert "./deploy/postgres/init-roles.sh:/docker-entrypoint-initdb.d/10-roles.sh:ro" in postgres_mounts
    assert "./deploy/postgres/roles.sql:/etc/vodhub/postgres/roles.sql:ro" in postgres_mounts
    identities = {identity["credentials"][0]["accessKey"]: identity["credentials"][0]["secretKey"]
                  for identity in json.loads((ROOT / "deploy" / "seaweedfs-s3.json").read_text())["identities"]}
    keys = {process: services[process]["environment"].get("VODHUB_S3_ACCESS_KEY_ID")
            for process in VODHUB_PROCESSES}
    # The projector, notifier and analytics never touch objects: they get no S3 identity at all.
    assert keys == {"api": "vodhub-api", "worker": "vodhub-worker", "relay": "vodhub-relay",
                    "projector": None, "notifier": None, "analytics": None}
    for process, key in keys.items():
        if key:
            assert services[process]["environment"]["VODHUB_S3_SECRET_ACCESS_KEY"] == identities[key]
    assert "-s3.config=/etc/seaweedfs/s3.json" in services["s3"]["command"]
    assert "./deploy/seaweedfs-s3.json:/etc/seaweedfs/s3.json:ro" in services["s3"]["volumes"]


def test_the_migrate_job_creates_the_tables_as_their_owner_before_any_process_starts(compose):
    services = compose["services"]
    job = services["migrate"]
    assert job["command"] == ["migrate"] and job["restart"] == "no"
    assert job["environment"]["VODHUB_DATABASE_URL"].startswith("postgresql://vodhub_owner:")
    assert job["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "VODHUB_DB_PASSWORD_OWNER" in services["postgres"]["environment"]
    assert "CREATE ROLE vodhub_owner LOGIN" in (ROOT / "deploy" / "postgres" / "roles.sql").read_text()
    for process in VODHUB_PROCESSES:
        service = services[process]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully", process
        assert service["environment"]["VODHUB_DB_MIGRATE"] == "false", process


def test_every_container_is_read_only_without_capabilities_or_new_privileges(compose):
    for name, service in compose["services"].items():
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        if name != "kafka":  # its start script writes its configuration into the image
            assert service.get("read_only") is True, name
    for name in ("api", "worker", "relay", "projector", "notifier", "analytics", "jwt-key", "webhooks-key"):
        assert not compose["services"][name].get("cap_add"), f"{name} needs no capability"
