"""`vodhub <process>`: the console script that starts one of the processes."""

from __future__ import annotations

import argparse
import logging
import anyio
import uvicorn
from litestar import Litestar

from entrypoints.api import build_api
from entrypoints.bootstrap import Vodhub, bootstrap
from entrypoints.settings import Settings

logger = logging.getLogger("vodhub")


def _serve(app: Litestar, settings: Settings) -> None:
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower())


def _api(settings: Settings) -> None:
    _serve(build_api(bootstrap(settings)), settings)


def _dev(settings: Settings) -> None:
    """The api with the relay (and the worker) running beside it in the same event loop."""
    vodhub = bootstrap(settings)
    app = build_api(vodhub, background=[vodhub.relay.run, vodhub.janitor.run])
    print(f"vodhub dev: data in {settings.data_dir.resolve()}, http://{settings.host}:{settings.port}")
    _serve(app, settings)


def _relay(settings: Settings) -> None:
    vodhub = bootstrap(settings)

    async def relay() -> None:
        await _ensure_topics(vodhub)
        logger.info("relay: following the videos notification log from %d", vodhub.relay.position())
        await vodhub.relay.run()

    try:
        anyio.run(relay)
    except KeyboardInterrupt:
        pass
    finally:
        vodhub.close()


async def _ensure_topics(vodhub: Vodhub) -> None:
    settings = vodhub.settings
    if not settings.kafka_bootstrap_servers:
        return
    from adapters.outbound.kafka import ensure_topics

    topics = settings.topics()
    partitions = settings.topic_partitions
    while True:
        try:
            await ensure_topics(settings.kafka_bootstrap_servers,
                                {topics.video_uploaded: partitions, topics.video_processed: partitions})
            return
        except ConnectionError as error:
            logger.warning("kafka not reachable (%s); retrying", error)
            await anyio.sleep(2)


COMMANDS = {
    "api": ("the HTTP API against the configured backends", _api),
    "relay": ("publish integration events from the event store to Kafka", _relay),
    "dev": ("everything in one process on embedded defaults", _dev),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vodhub", description="vodhub video-on-demand backend")
    commands = parser.add_subparsers(dest="command", required=True, metavar="PROCESS")
    for name, (help_text, _) in COMMANDS.items():
        commands.add_parser(name, help=help_text)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    COMMANDS[args.command][1](settings)


if __name__ == "__main__":
    main()
