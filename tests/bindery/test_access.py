"""The role rules, as a table: every action for members and admins."""

from __future__ import annotations

import re

import pytest

from bindery.access import Action, Actor, Role, may, require
from bindery.errors import PermissionDenied

MEMBER = Actor(1, "m@acme.io", Role.MEMBER, 1, "Acme")
ADMIN = Actor(2, "a@acme.io", Role.ADMIN, 1, "Acme")


@pytest.mark.parametrize("action", list(Action))
def test_admins_may_do_everything(action: Action) -> None:
    assert may(ADMIN, action)


@pytest.mark.parametrize(("action", "allowed"), [
    (Action.BIND, True), (Action.VIEW, True), (Action.PICK_CLOUD_API, False), (Action.UNBIND, False),
    (Action.EXPORT_MANIFEST, False), (Action.CONFIGURE_CLOUD_API, False), (Action.PROVISION, False),
])
def test_members_may_bind_and_view_only(action: Action, allowed: bool) -> None:
    assert may(MEMBER, action) is allowed


def test_refusal_names_user_account_and_action() -> None:
    expected = "m@acme.io is a member of account Acme: only admins may unbind"
    with pytest.raises(PermissionDenied, match=re.escape(expected)):
        require(MEMBER, Action.UNBIND)
