"""What `vodhub <process>` says at start when it cannot work as configured: a data directory it
cannot write stops it with a message (not a traceback), and a lone api on the in-process bus,
whose uploads nothing would process, warns."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from entrypoints.cli import warn_if_alone
from entrypoints.settings import Settings
from tests.fixtures.processes import VODHUB


def run_vodhub(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("VODHUB_")}
    return subprocess.run([VODHUB, command], env={**environment, **env}, cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_an_unwritable_data_directory_stops_the_process_with_a_clear_message(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    unwritable = tmp_path / "a-file" / "data"  # even root cannot create a directory inside a file
    finished = run_vodhub("api", {"VODHUB_DATA_DIR": str(unwritable)}, tmp_path)
    assert finished.returncode == 1
    assert f"vodhub: the data directory {unwritable} is not writable" in finished.stderr
    assert "VODHUB_DATA_DIR" in finished.stderr and "Traceback" not in finished.stderr
    # Before that, a lone api on embedded defaults said that nothing would process its uploads.
    assert "uploads are accepted and stored but no worker will ever process them" in finished.stderr


def test_the_data_directory_is_not_needed_when_every_backend_is_configured(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    settings = Settings.from_env({
        "VODHUB_DATA_DIR": str(tmp_path / "a-file" / "data"), "VODHUB_DATABASE_URL": "postgresql://db/vodhub",
        "VODHUB_S3_ENDPOINT": "http://s3:8333", "VODHUB_JWT_PRIVATE_KEY": "/keys/jwt.pem",
        "VODHUB_WEBHOOKS_SECRET_KEY": "/keys/webhooks.key",
    })
    settings.check_data_dir()  # nothing to write there: no complaint
    with pytest.raises(SystemExit, match="is not writable"):
        Settings.from_env({"VODHUB_DATA_DIR": str(tmp_path / "a-file" / "data")}).check_data_dir()


def test_a_lone_api_on_the_in_process_bus_warns_that_nothing_will_process_uploads(caplog):
    warn_if_alone(Settings.from_env({}), "api")
    assert "uploads are accepted and stored but no worker will ever process them" in caplog.text
    assert "`vodhub dev`" in caplog.text


def test_only_processes_that_need_kafka_warn_without_it(caplog):
    embedded = Settings.from_env({})
    for command in ("dev", "projector"):
        warn_if_alone(embedded, command)
    warn_if_alone(Settings.from_env({"VODHUB_KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"}), "api")
    assert not caplog.records
    warn_if_alone(embedded, "worker")
    assert "in-process bus that no other process reaches" in caplog.text
