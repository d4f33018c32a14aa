"""Account use cases. The same scenarios run on POPO here and on SQLite and PostgreSQL in
tests/integration/test_account_persistence.py, by overriding `eventstore_env`."""

from __future__ import annotations

import threading
import uuid

import pytest

from adapters.outbound.argon2_hasher import Argon2PasswordHasher
from adapters.outbound.login_budget import InMemoryLoginBudget
from application.accounts import Accounts
from application.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidToken,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
    ValidationError,
)
from application.rate_limits import Rate

PASSWORD = "correct horse battery"


class TestAccounts:
    @pytest.fixture
    def eventstore_env(self) -> dict[str, str]:
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}

    @pytest.fixture
    def accounts(self, account_adapters, eventstore_env):
        app = Accounts(**account_adapters, env=eventstore_env)
        yield app
        app.close()

    def register(self, accounts, name="alice"):
        return accounts.register(name, f"{name}@example.com", PASSWORD)

    def login_principal(self, accounts, name="alice"):
        return accounts.authenticate(accounts.login(name, PASSWORD).access_token)

    def test_first_account_is_admin_then_users(self, accounts):
        assert self.register(accounts, "alice").roles == ["admin"]
        assert self.register(accounts, "bob").roles == ["user"]

    def test_duplicate_username_or_email_is_a_conflict_whatever_the_case(self, accounts):
        self.register(accounts, "alice")
        with pytest.raises(Conflict, match="username"):
            accounts.register("ALICE", "other@example.com", PASSWORD)
        with pytest.raises(Conflict, match="email"):
            accounts.register("alice2", "Alice@Example.COM", PASSWORD)

    def test_concurrent_registrations_of_one_name_yield_exactly_one_account(self, accounts):
        outcomes: list[str] = []

        def attempt(i: int) -> None:
            try:
                accounts.register("carol", f"carol{i}@example.com", PASSWORD)
                outcomes.append("created")
            except Conflict:
                outcomes.append("conflict")

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["conflict"] * 3 + ["created"]

    def test_weak_password_is_refused(self, accounts):
        with pytest.raises(ValidationError, match="password"):
            accounts.register("alice", "alice@example.com", "short")

    def test_login_by_username_or_email(self, accounts):
        self.register(accounts)
        assert accounts.login("Alice", PASSWORD).token_type == "Bearer"
        assert accounts.login("ALICE@example.com", PASSWORD).expires_in == 900

    def test_unknown_user_and_wrong_password_fail_alike(self, accounts):
        self.register(accounts)
        with pytest.raises(AuthenticationFailed) as unknown:
            accounts.login("nobody", PASSWORD)
        with pytest.raises(AuthenticationFailed) as wrong:
            accounts.login("alice", "wrong password!")
        assert str(unknown.value) == str(wrong.value)

    def test_login_rehashes_a_password_hashed_with_old_parameters(self, accounts):
        profile = self.register(accounts)
        accounts.hasher = Argon2PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
        accounts.login("alice", PASSWORD)
        user = accounts.repository.get(profile.id)
        assert not accounts.hasher.needs_rehash(user.password_hash)
        assert accounts.login("alice", PASSWORD)

    def test_access_token_proves_identity_and_roles(self, accounts):
        profile = self.register(accounts)
        principal = self.login_principal(accounts)
        assert (principal.user_id, principal.username, principal.roles) == (profile.id, "alice", ("admin",))

    def test_refresh_rotates_and_a_replayed_token_revokes_the_family(self, accounts):
        self.register(accounts)
        first = accounts.login("alice", PASSWORD)
        second = accounts.refresh(first.refresh_token)
        assert second.refresh_token != first.refresh_token
        with pytest.raises(InvalidToken):
            accounts.refresh(first.refresh_token)  # replay of a spent token
        with pytest.raises(InvalidToken):
            accounts.refresh(second.refresh_token)  # the whole family is gone
        assert accounts.refresh(accounts.login("alice", PASSWORD).refresh_token)  # a new login works

    def test_unknown_or_expired_refresh_token_is_refused(self, accounts, clock):
        self.register(accounts)
        with pytest.raises(InvalidToken):
            accounts.refresh("not-a-token")
        pair = accounts.login("alice", PASSWORD)
        clock.advance(accounts.refresh_ttl + 1)
        with pytest.raises(InvalidToken):
            accounts.refresh(pair.refresh_token)

    def test_logout_revokes_the_access_token_and_its_refresh_family(self, accounts):
        self.register(accounts)
        pair = accounts.login("alice", PASSWORD)
        principal = accounts.authenticate(pair.access_token)
        accounts.logout(principal)
        with pytest.raises(InvalidToken, match="revoked"):
            accounts.authenticate(pair.access_token)
        with pytest.raises(InvalidToken):
            accounts.refresh(pair.refresh_token)

    def test_expired_access_token_is_refused(self, accounts, clock):
        self.register(accounts)
        token = accounts.login("alice", PASSWORD).access_token
        clock.advance(accounts.access_ttl + 10)
        with pytest.raises(InvalidToken, match="expired"):
            accounts.authenticate(token)

    def test_profiles_are_full_for_self_and_admin_public_for_others(self, accounts):
        alice = self.register(accounts, "alice")
        bob = self.register(accounts, "bob")
        as_alice, as_bob = self.login_principal(accounts, "alice"), self.login_principal(accounts, "bob")
        assert accounts.get_profile(as_bob, bob.id).email == "bob@example.com"
        assert accounts.get_profile(as_alice, bob.id).email == "bob@example.com"  # admin
        assert not hasattr(accounts.get_profile(as_bob, alice.id), "email")
        with pytest.raises(NotFound):
            accounts.get_profile(as_bob, uuid.uuid4())

    def test_an_index_id_is_not_a_user(self, accounts):
        from domain.users import index_id

        self.register(accounts)
        with pytest.raises(NotFound):
            accounts.get_profile(self.login_principal(accounts), index_id("username", "alice"))

    def test_update_profile_self_or_admin(self, accounts):
        alice, bob = self.register(accounts, "alice"), self.register(accounts, "bob")
        as_bob = self.login_principal(accounts, "bob")
        assert accounts.update_profile(as_bob, bob.id, bio="hi").bio == "hi"
        with pytest.raises(PermissionDenied):
            accounts.update_profile(as_bob, alice.id, bio="hacked")
        as_alice = self.login_principal(accounts, "alice")
        assert accounts.update_profile(as_alice, bob.id, display_name="Bobby").display_name == "Bobby"

    def test_roles_change_only_by_admin_and_show_in_new_tokens(self, accounts):
        self.register(accounts, "alice")
        bob = self.register(accounts, "bob")
        as_bob = self.login_principal(accounts, "bob")
        with pytest.raises(PermissionDenied):
            accounts.change_roles(as_bob, bob.id, ["admin"])
        accounts.change_roles(self.login_principal(accounts, "alice"), bob.id, ["moderator"])
        assert self.login_principal(accounts, "bob").roles == ("moderator",)

    def test_disabled_account_cannot_log_in_or_refresh(self, accounts):
        self.register(accounts, "alice")
        bob = self.register(accounts, "bob")
        pair = accounts.login("bob", PASSWORD)
        accounts.disable(self.login_principal(accounts, "alice"), bob.id)
        with pytest.raises(AuthenticationFailed):
            accounts.login("bob", PASSWORD)
        with pytest.raises(InvalidToken):
            accounts.refresh(pair.refresh_token)

    @pytest.fixture
    def budgeted(self, account_adapters, eventstore_env):
        app = Accounts(**account_adapters, login_budget=InMemoryLoginBudget(Rate(3, 3600)), env=eventstore_env)
        yield app
        app.close()

    def test_failed_logins_from_anywhere_spend_the_accounts_budget_then_even_the_password_is_refused(self, budgeted):
        self.register(budgeted, "alice")
        for name in ("alice", "ALICE@example.com", "alice"):  # the name and the email share one budget
            with pytest.raises(AuthenticationFailed):
                budgeted.login(name, "wrong password!")
        with pytest.raises(TooManyAttempts) as refused:
            budgeted.login("alice", PASSWORD)
        assert 0 < refused.value.retry_after_s <= 3600

    def test_successful_logins_spend_nothing(self, budgeted):
        self.register(budgeted, "alice")
        for _ in range(5):
            budgeted.login("alice", PASSWORD)
        with pytest.raises(AuthenticationFailed):
            budgeted.login("alice", "wrong password!")

    def test_unknown_names_have_a_budget_too_so_429_tells_nothing(self, budgeted):
        for _ in range(3):
            with pytest.raises(AuthenticationFailed):
                budgeted.login("nobody", PASSWORD)
        with pytest.raises(TooManyAttempts):
            budgeted.login("nobody", PASSWORD)

    def test_unknown_users_cost_a_password_verification_like_known_ones(self, account_adapters, eventstore_env):
        verified: list[str] = []
        hasher = account_adapters["hasher"]
        real_verify = hasher.verify
        hasher.verify = lambda password_hash, password: verified.append(password_hash) or real_verify(password_hash, password)
        app = Accounts(**account_adapters, env=eventstore_env)
        try:
            self.register(app, "alice")
            for name in ("alice", "nobody"):
                with pytest.raises(AuthenticationFailed) as failed:
                    app.login(name, "wrong password!")
                assert str(failed.value) == "unknown user or wrong password"
        finally:
            app.close()
        assert len(verified) == 2 and all(h.startswith("$argon2id$") for h in verified)

    def test_disabling_ends_every_access_token_issued_before_at_once(self, accounts, clock):
        self.register(accounts, "alice")
        bob = self.register(accounts, "bob")
        tokens = [accounts.login("bob", PASSWORD).access_token for _ in range(2)]
        clock.advance(1)
        accounts.disable(self.login_principal(accounts, "alice"), bob.id)
        for token in tokens:
            with pytest.raises(InvalidToken, match="revoked"):
                accounts.authenticate(token)

    def test_a_role_change_ends_earlier_tokens_and_later_ones_carry_the_new_roles(self, accounts, clock):
        self.register(accounts, "alice")
        bob = self.register(accounts, "bob")
        before = accounts.login("bob", PASSWORD).access_token
        clock.advance(1)
        accounts.change_roles(self.login_principal(accounts, "alice"), bob.id, ["moderator"])
        with pytest.raises(InvalidToken, match="revoked"):
            accounts.authenticate(before)
        clock.advance(1)
        assert self.login_principal(accounts, "bob").roles == ("moderator",)

    def test_setting_the_same_roles_again_revokes_nothing(self, accounts, clock):
        self.register(accounts, "alice")
        bob = self.register(accounts, "bob")
        token = accounts.login("bob", PASSWORD).access_token
        clock.advance(1)
        accounts.change_roles(self.login_principal(accounts, "alice"), bob.id, ["user"])
        assert accounts.authenticate(token).username == "bob"

    def test_a_revoked_user_cutoff_is_forgotten_once_earlier_tokens_expired(self, accounts, clock):
        self.register(accounts, "alice")
        bob = self.register(accounts, "bob")
        clock.advance(1)
        accounts.change_roles(self.login_principal(accounts, "alice"), bob.id, ["moderator"])
        clock.advance(accounts.access_ttl + 1)
        assert not accounts.revocations.is_revoked("x", user_id=bob.id, issued_at=clock.now())

    def test_a_replayed_refresh_token_also_revokes_the_sessions_access_tokens(self, accounts):
        self.register(accounts)
        stolen = accounts.login("alice", PASSWORD)
        fresh = accounts.refresh(stolen.refresh_token)
        with pytest.raises(InvalidToken):
            accounts.refresh(stolen.refresh_token)  # the replay
        for token in (stolen.access_token, fresh.access_token):
            with pytest.raises(InvalidToken, match="revoked"):
                accounts.authenticate(token)

    def test_logout_ends_every_access_token_of_the_session_but_not_other_sessions(self, accounts):
        self.register(accounts)
        first = accounts.login("alice", PASSWORD)
        refreshed = accounts.refresh(first.refresh_token)
        other_device = accounts.login("alice", PASSWORD)
        accounts.logout(accounts.authenticate(refreshed.access_token))
        with pytest.raises(InvalidToken):
            accounts.authenticate(first.access_token)
        assert accounts.authenticate(other_device.access_token).username == "alice"
