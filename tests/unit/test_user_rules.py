"""The User aggregate's rules."""

import uuid

import pytest

from domain.errors import PermissionDenied, ValidationError
from domain.users import ADMIN, MODERATOR, USER, User, index_id, normalise_email, normalise_username


def new_user(first: bool = False) -> User:
    return User.register(uuid.uuid4(), "Alice", "Alice@Example.com", "hash", first=first)


def test_username_and_email_are_case_folded():
    user = new_user()
    assert (user.username, user.email) == ("alice", "alice@example.com")


@pytest.mark.parametrize("name", ["ab", "a" * 33, "al ice", "alice!", "ålice", "al\x00ice", ""])
def test_username_outside_the_allowed_alphabet_is_refused(name):
    with pytest.raises(ValidationError) as info:
        normalise_username(name)
    assert info.value.field == "username"


@pytest.mark.parametrize("email", ["no-at-sign", "a@b", "a b@example.com", "@example.com", "a@@example.com",
                                   "x" * 250 + "@example.com", "a\n@example.com"])
def test_invalid_email_is_refused(email):
    with pytest.raises(ValidationError):
        normalise_email(email)


def test_first_account_is_admin_and_others_are_users():
    assert new_user(first=True).roles == [ADMIN]
    assert new_user().roles == [USER]


def test_display_name_defaults_to_username():
    assert new_user().display_name == "alice"


def test_only_self_or_admin_may_edit_a_profile():
    user = new_user()
    with pytest.raises(PermissionDenied):
        user.update_profile(uuid.uuid4(), (USER, MODERATOR), display_name="x", bio=None, avatar_url=None)
    user.update_profile(uuid.uuid4(), (ADMIN,), display_name="By Admin", bio=None, avatar_url=None)
    user.update_profile(user.id, (USER,), display_name=None, bio="hello", avatar_url="https://a.example/x.png")
    assert (user.display_name, user.bio, user.avatar_url) == ("By Admin", "hello", "https://a.example/x.png")


@pytest.mark.parametrize("changes, field", [
    ({"display_name": "x" * 65}, "display_name"),
    ({"display_name": "   "}, "display_name"),
    ({"bio": "x" * 2001}, "bio"),
    ({"bio": "bell\x07"}, "bio"),
    ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
])
def test_profile_fields_are_bounded(changes, field):
    user = new_user()
    values = {"display_name": None, "bio": None, "avatar_url": None, **changes}
    with pytest.raises(ValidationError) as info:
        user.update_profile(user.id, (USER,), **values)
    assert info.value.field == field


def test_only_admins_change_roles_and_only_to_known_roles():
    user = new_user()
    with pytest.raises(PermissionDenied):
        user.change_roles((MODERATOR,), [ADMIN])
    with pytest.raises(ValidationError):
        user.change_roles((ADMIN,), ["superuser"])
    with pytest.raises(ValidationError):
        user.change_roles((ADMIN,), [])
    user.change_roles((ADMIN,), [MODERATOR, USER])
    assert user.roles == [USER, MODERATOR]


def test_disabling_is_for_admins_and_happens_once():
    user = new_user()
    with pytest.raises(PermissionDenied):
        user.disable((USER,))
    user.disable((ADMIN,))
    user.disable((ADMIN,))
    assert user.disabled
    assert [type(e).__name__ for e in user.collect_events()] == ["Registered", "Disabled"]


def test_index_ids_are_stable_per_kind_and_value():
    assert index_id("username", "alice") == index_id("username", "alice")
    assert index_id("username", "alice") != index_id("email", "alice")
