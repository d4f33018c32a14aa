"""The databases' exceptions reach the use cases and the HTTP table as application errors."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from sqlalchemy import text

from adapters.inbound.http.problems import domain_error_handler
from adapters.outbound.persistence_errors import translate_event_store_errors
from adapters.outbound.sql_catalog import create_catalog_engine
from application.errors import ConcurrentChange, Unavailable


class Thing(Aggregate):
    def rename(self) -> None:
        self.trigger_event(Aggregate.Event)


def test_a_lost_race_on_save_is_a_concurrent_change_that_use_cases_still_retry_on():
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    translate_event_store_errors(app.recorder)
    thing = Thing()
    app.save(thing)
    first, second = app.repository.get(thing.id), app.repository.get(thing.id)
    first.rename()
    second.rename()
    app.save(first)
    with pytest.raises(ConcurrentChange) as raised:
        app.save(second)
    assert isinstance(raised.value, IntegrityError)


def test_a_concurrent_change_is_answered_409_with_its_own_problem_type():
    request = SimpleNamespace(method="PUT", url=SimpleNamespace(path="/videos/x"))
    response = domain_error_handler(request, ConcurrentChange())  # type: ignore[arg-type]
    body = response.content
    assert response.status_code == 409
    assert body["type"].endswith("/concurrent-change")


def test_a_read_model_database_that_cannot_be_opened_is_unavailable(tmp_path):
    engine = create_catalog_engine(f"sqlite:///{tmp_path / 'missing' / 'catalog.sqlite3'}")
    with pytest.raises(Unavailable), engine.connect() as connection:
        connection.execute(text("SELECT 1"))
