"""Only the api holds the JWT signing key: the worker, relay (with the janitor) and notifier
start without it, never read VODHUB_JWT_PRIVATE_KEY and never generate a key of their own."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import entrypoints.cli
import entrypoints.notifier
import entrypoints.worker
from entrypoints import bootstrap as composition
from entrypoints.settings import Settings


class Started(Exception):
    """Raised once a process's composition root has been built."""


def _settings(tmp_path: Path) -> Settings:
    # A key path that does not exist: reading it would fail the start.
    return Settings(data_dir=tmp_path / "data", jwt_private_key=str(tmp_path / "no-such-key.pem"),
                    password_time_cost=1, password_memory_cost=8192)


def test_the_api_needs_the_signing_key(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        composition.bootstrap(_settings(tmp_path))


@pytest.mark.parametrize(("module", "start"), [
    (entrypoints.worker, lambda settings: entrypoints.worker.run_worker(settings)),
    (entrypoints.notifier, lambda settings: entrypoints.notifier.run_notifier(settings)),
    (entrypoints.cli, lambda settings: entrypoints.cli._relay(settings, argparse.Namespace())),
], ids=["worker", "notifier", "relay"])
def test_the_other_processes_start_without_it(
    module: Any, start: Callable[[Settings], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def build_then_stop(settings: Settings, **keywords: Any) -> None:
        composition.bootstrap(settings, **keywords).close()
        raise Started

    monkeypatch.setattr(module, "bootstrap", build_then_stop)
    settings = _settings(tmp_path)
    with pytest.raises(Started):
        start(settings)
    assert not list(settings.data_dir.glob("*.pem")), "a process other than the api made a signing key"


def test_a_process_without_the_key_refuses_to_issue_or_check_tokens(tmp_path: Path) -> None:
    vodhub = composition.bootstrap(_settings(tmp_path), holds_signing_key=False)
    try:
        with pytest.raises(RuntimeError, match="no signing key"):
            vodhub.accounts.authenticate("any.token.here")
    finally:
        vodhub.close()
