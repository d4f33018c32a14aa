"""`vodhub <process>`: the console script that starts one of the processes."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from entrypoints.api import build_api
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings


def _serve_api(settings: Settings) -> None:
    app = build_api(bootstrap(settings))
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower())


def _dev(settings: Settings) -> None:
    print(f"vodhub dev: data in {settings.data_dir.resolve()}, http://{settings.host}:{settings.port}")
    _serve_api(settings)


COMMANDS = {
    "api": ("the HTTP API against the configured backends", _serve_api),
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
