"""The account scenarios again, on the SQLite file store and on PostgreSQL."""

from __future__ import annotations

import pytest

from application.accounts import Accounts
from tests.unit.test_accounts import TestAccounts as AccountScenarios


class DurableAccountScenarios(AccountScenarios):
    """What only a durable store can show."""

    def test_history_survives_a_new_application_instance(self, accounts, account_adapters, eventstore_env):
        alice = self.register(accounts)
        reopened = Accounts(**account_adapters, env=eventstore_env)
        try:
            assert reopened.get_own_profile(self.login_principal(reopened)).id == alice.id
        finally:
            reopened.close()


class TestAccountsOnSQLite(DurableAccountScenarios):
    @pytest.fixture
    def eventstore_env(self, tmp_path) -> dict[str, str]:
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(tmp_path / "accounts.sqlite3"),
            "SQLITE_LOCK_TIMEOUT": "10",
        }


class TestAccountsOnPostgres(DurableAccountScenarios):
    @pytest.fixture
    def eventstore_env(self, postgres_eventstore_env) -> dict[str, str]:
        return postgres_eventstore_env
