"""`vodhub <process>`: the console script that starts one of the processes."""

from __future__ import annotations

import argparse
import logging

import anyio
import uvicorn
from litestar import Litestar

from entrypoints.api import build_api, embedded_background
from entrypoints.bootstrap import bootstrap
from entrypoints.projector import run_projector
from entrypoints.settings import Settings
from entrypoints.shutdown import run_until_terminated
from entrypoints.topics import ensure_topics_exist
from entrypoints.worker import run_worker

logger = logging.getLogger("vodhub")


def _serve(app: Litestar, settings: Settings) -> None:
    # The app writes its own JSON access log (vodhub.access); uvicorn's would repeat it.
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(), access_log=False,
        h11_max_incomplete_event_size=settings.max_header_bytes, timeout_keep_alive=5,
        # SIGTERM: stop accepting, let in-flight requests and uploads finish for this long, then exit.
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_s)),
    )


def _api(settings: Settings, _: argparse.Namespace) -> None:
    _serve(build_api(bootstrap(settings)), settings)


def _dev(settings: Settings, _: argparse.Namespace) -> None:
    """The api with the relay, janitor, worker and projector running beside it."""
    vodhub = bootstrap(settings)
    app = build_api(vodhub, background=embedded_background(vodhub))
    print(f"vodhub dev: data in {settings.data_dir.resolve()}, http://{settings.host}:{settings.port}")
    _serve(app, settings)


def serve_metrics(settings: Settings) -> None:
    """Processes without the api expose their own metrics for Prometheus to scrape."""
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.host)


def _relay(settings: Settings, _: argparse.Namespace) -> None:
    serve_metrics(settings)
    vodhub = bootstrap(settings)

    async def relay() -> None:
        await ensure_topics_exist(settings)
        logger.info("relay: following the videos notification log from %d", vodhub.relay.position())
        # Each stops after the batch (or sweep) in hand, its position recorded.
        await run_until_terminated([
            lambda stop: vodhub.relay.run(stop=stop),
            lambda stop: vodhub.janitor.run(stop=stop),
            lambda stop: vodhub.sweep.run(settings.sweep_interval_s, stop=stop),
        ], grace_s=settings.shutdown_grace_s, name="relay")

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


COMMANDS = {
    "api": ("the HTTP API against the configured backends", _api),
    "relay": ("publish integration events to Kafka; remove deleted videos' objects", _relay),
    "worker": ("transcode uploaded videos (Kafka consumer group video-processing)", _worker),
    "projector": ("keep the catalog read model up to date", _projector),
    "notifier": ("deliver signed webhooks (Kafka consumer group notifications)", _notifier),
    "analytics": ("count video-viewed-events into the read model (Kafka consumer group analytics)", _analytics),
    "dev": ("everything in one process on embedded defaults", _dev),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vodhub", description="vodhub video-on-demand backend")
    commands = parser.add_subparsers(dest="command", required=True, metavar="PROCESS")
    for name, (help_text, _) in COMMANDS.items():
        command = commands.add_parser(name, help=help_text)
        if name == "projector":
            command.add_argument("--rebuild", action="store_true", help="drop the read model and replay every event")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    COMMANDS[args.command][1](settings, args)


if __name__ == "__main__":
    main()
