"""`vodhub <process>`: the console script that starts one of the processes."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import tempfile
from typing import TypedDict

import anyio
import uvicorn
from litestar import Litestar

from adapters.log_redaction import redact_all_handlers
from entrypoints.api import build_api, embedded_background
from entrypoints.bootstrap import bootstrap
from entrypoints.projector import run_projector
from entrypoints.settings import Settings
from entrypoints.shutdown import run_until_terminated
from entrypoints.topics import ensure_topics_exist
from entrypoints.worker import run_worker

logger = logging.getLogger("vodhub")


# uvicorn on uvloop and httptools: measured against granian with vodhub's own app, both served
# /health/live at the same rate (the app's path is the cost, not the server), and uvicorn's
# worker manager runs several processes from one command.
# A worker bootstraps its own app before it answers the supervisor; uvicorn's default 5 s
# restarts it in a loop on a busy machine.
WORKER_START_TIMEOUT_S = 120
class ServerOptions(TypedDict):
    loop: str
    http: str
    access_log: bool
    timeout_keep_alive: int


SERVER_OPTIONS: ServerOptions = {"loop": "uvloop", "http": "httptools", "access_log": False, "timeout_keep_alive": 5}


def _serve(app: Litestar | str, settings: Settings, workers: int = 1) -> None:
    """Serve the app object, or with several workers the factory at that import path (each
    worker process builds its own app). The app writes its own JSON access log
    (vodhub.access); uvicorn's would repeat it. No log_config: uvicorn's loggers go through the
    root handler, which redacts secrets. The app finds the client address itself
    (VODHUB_TRUSTED_PROXIES), so uvicorn must not rewrite it."""
    if workers > 1:
        share_metrics_between_workers()
    freeze_startup_objects()
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(), workers=workers,
        factory=isinstance(app, str), timeout_worker_healthcheck=WORKER_START_TIMEOUT_S, log_config=None,
        proxy_headers=False, **SERVER_OPTIONS,
        # SIGTERM: stop accepting, let in-flight requests and uploads finish for this long, then exit.
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_s)),
    )


def freeze_startup_objects() -> None:
    """What is built before serving (modules, the app, its pools) lives as long as the process:
    out of the collector's reach, a full collection no longer walks it while requests wait."""
    gc.collect()
    gc.freeze()


def share_metrics_between_workers() -> None:
    """Workers are separate processes: their metrics add up in PROMETHEUS_MULTIPROC_DIR (see
    adapters/inbound/http/metrics.py). Set before the workers start, so they all inherit it."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="vodhub-metrics-")


def _api(settings: Settings, _: argparse.Namespace) -> None:
    if settings.workers > 1:
        _serve("entrypoints.asgi:api", settings, workers=settings.workers)
    else:
        _serve(build_api(bootstrap(settings)), settings)


def _dev(settings: Settings, _: argparse.Namespace) -> None:
    """The api with the relay, janitor, worker and projector running beside it (one process:
    they share in-process state, so VODHUB_WORKERS does not apply)."""
    vodhub = bootstrap(settings)
    app = build_api(vodhub, background=embedded_background(vodhub))
    print(f"vodhub dev: data in {settings.data_dir.resolve()}, http://{settings.host}:{settings.port}")
    _serve(app, settings)


def warn_if_alone(settings: Settings, command: str) -> None:
    """Without Kafka the processes talk over an in-process bus, which only `vodhub dev` shares:
    a lone api would accept uploads that nothing ever processes."""
    if settings.kafka_bootstrap_servers or command in ("dev", "projector", "migrate"):
        return
    if command == "api":
        logger.warning(
            "vodhub api: VODHUB_KAFKA_BOOTSTRAP_SERVERS is not set, so uploads are accepted and stored but no worker "
            "will ever process them (the in-process bus reaches only this process). Run `vodhub dev` for everything "
            "in one process, or give every process the same Kafka."
        )
    else:
        logger.warning(
            "vodhub %s: VODHUB_KAFKA_BOOTSTRAP_SERVERS is not set, so it listens on an in-process bus that no other "
            "process reaches. Run `vodhub dev` for everything in one process, or give every process the same Kafka.",
            command,
        )


def configure_tracing(settings: Settings, service_name: str) -> None:
    """Export spans when VODHUB_OTLP_ENDPOINT (or VODHUB_TRACE_CONSOLE) says where; else nothing
    about tracing is set up at all."""
    from adapters.outbound import tracing

    if tracing.configure(service_name, settings.otlp_endpoint, settings.trace_console, settings.trace_sample_ratio):
        tracing.instrument_libraries()
        logger.info("tracing: %s exports spans to %s", service_name, settings.otlp_endpoint or "the console")


def serve_metrics(settings: Settings) -> None:
    """Processes without the api expose their own metrics for Prometheus to scrape."""
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.host)


def _relay(settings: Settings, _: argparse.Namespace) -> None:
    serve_metrics(settings)
    vodhub = bootstrap(settings, holds_signing_key=False)

    async def relay() -> None:
        await ensure_topics_exist(settings)
        # Three jobs in one process: the relay proper, the janitor (a second follower of the same
        # log, with its own position) and the sweep. Each stops after the batch (or sweep) in
        # hand, its position recorded.
        logger.info("relay: publishing the videos log from %d", vodhub.relay.position())
        logger.info("relay: janitor removing deleted videos' objects from %d", vodhub.janitor.position())
        logger.info("relay: sweep re-driving stuck videos every %.0f s", settings.sweep_interval_s)
        await run_until_terminated([
            lambda stop: vodhub.relay.run(stop=stop),
            lambda stop: vodhub.janitor.run(stop=stop),
            lambda stop: vodhub.sweep.run(settings.sweep_interval_s, stop=stop),
        ], grace_s=settings.shutdown_grace_s, name="relay")  # its log lines name the janitor and the sweep it runs

    try:
        anyio.run(relay)
    except KeyboardInterrupt:
        pass
    finally:
        vodhub.close()


def _worker(settings: Settings, _: argparse.Namespace) -> None:
    serve_metrics(settings)
    run_worker(settings)


def _notifier(settings: Settings, _: argparse.Namespace) -> None:
    serve_metrics(settings)
    from entrypoints.notifier import run_notifier

    run_notifier(settings)


def _analytics(settings: Settings, _: argparse.Namespace) -> None:
    from entrypoints.analytics import run_analytics

    serve_metrics(settings)
    run_analytics(settings)


def _projector(settings: Settings, args: argparse.Namespace) -> None:
    serve_metrics(settings)
    try:
        run_projector(settings, rebuild=args.rebuild)
    except KeyboardInterrupt:
        pass


def _migrate(settings: Settings, _: argparse.Namespace) -> None:
    from entrypoints.migrate import migrate

    migrate(settings)


COMMANDS = {
    "api": ("the HTTP API against the configured backends", _api),
    "relay": ("follow the videos log: publish its integration events (relay), remove deleted videos' and "
              "abandoned plans' objects (janitor), re-drive stuck videos (sweep)", _relay),
    "worker": ("transcode uploaded videos (Kafka consumer group video-processing)", _worker),
    "projector": ("keep the catalog read model up to date", _projector),
    "notifier": ("deliver signed webhooks (Kafka consumer group notifications)", _notifier),
    "analytics": ("count video-viewed-events into the read model (Kafka consumer group analytics)", _analytics),
    "dev": ("everything in one process on embedded defaults", _dev),
    "migrate": ("create every table as their owner and grant each process role its privileges, then exit", _migrate),
}


def configure_logging(settings: Settings) -> None:
    """Text lines on stderr, every handler redacting secrets; each process (and each api worker
    process, which starts from entrypoints/asgi.py) calls it once."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    redact_all_handlers()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vodhub", description="vodhub video-on-demand backend")
    commands = parser.add_subparsers(dest="command", required=True, metavar="PROCESS")
    for name, (help_text, _) in COMMANDS.items():
        command = commands.add_parser(name, help=help_text)
        if name == "projector":
            command.add_argument("--rebuild", action="store_true", help="drop the read model and replay every event")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings)
    warn_if_alone(settings, args.command)
    settings.check_data_dir()
    configure_tracing(settings, f"vodhub-{args.command}")
    COMMANDS[args.command][1](settings, args)


if __name__ == "__main__":
    main()
