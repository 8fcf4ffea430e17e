"""Creating accounts and users (operator work: these commands act for nobody)."""

from __future__ import annotations

from sqlmodel import Session, select

from bindery import audit
from bindery.access import Role, normalise_email
from bindery.errors import AlreadyExists, BadInput, NotFound
from bindery.models.accounts import Account, User


def check_account_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 64 or not name.isprintable():
        raise BadInput(f"invalid account name {name!r}: use 1 to 64 printable characters")
    return name


def find_account(session: Session, name: str) -> Account | None:
    """The account of that name as typed, or else the one account whose name differs only in case (people
    type 'beta' for Beta; two accounts differing only in case, made before names were kept apart, need the
    exact name)."""
    exact = session.exec(select(Account).where(Account.name == name)).first()
    if exact is not None:
        return exact
    # compared here, not by the database's lower(): SQLite's changes ASCII letters only ('Ä' stays), so
    # 'ärzte' found Ärzte on PostgreSQL and nothing on SQLite (accounts are few: the operator makes them)
    wanted = name.casefold()
    alike = [account_id for account_id, other in session.exec(select(Account.id, Account.name)).all()
             if other.casefold() == wanted]
    return session.get(Account, alike[0]) if len(alike) == 1 else None


def create_account(*, session: Session, name: str, actor: str) -> Account:
    name = check_account_name(name)
    taken = find_account(session, name)
    if taken is not None:
        raise AlreadyExists(f"account {name} already exists" if taken.name == name
                            else f"account {taken.name} already exists: account names must differ in more than case")
    account = Account(name=name)
    session.add(account)
    session.flush()
    audit.record(session=session, actor=actor, action="account.create", subject=name, account_id=account.id)
    return account


def get_account(*, session: Session, name: str) -> Account:
    account = find_account(session, name)
    if account is None:
        raise NotFound(f"unknown account {name}")
    return account


def add_user(*, session: Session, email: str, account: str, role: str, actor: str) -> User:
    email = normalise_email(email)
    try:
        checked_role = Role(role)
    except ValueError:
        raise BadInput(f"invalid role {role!r}: use admin or member") from None
    owner = get_account(session=session, name=account)
    if session.exec(select(User).where(User.email == email)).first():
        raise AlreadyExists(f"user {email} already exists")
    assert owner.id is not None
    user = User(email=email, role=checked_role.value, account_id=owner.id)
    session.add(user)
    audit.record(session=session, actor=actor, action="user.add", subject=email, account_id=owner.id,
                 account=owner.name,
                 role=checked_role.value)
    return user


def list_users(*, session: Session, account: str | None = None) -> list[dict[str, str]]:
    query = select(User, Account).join(Account).order_by(Account.name, User.email)
    if account is not None:
        query = query.where(Account.name == get_account(session=session, name=account).name)
    return [{"email": u.email, "account": a.name, "role": u.role, "created_at": u.created_at.isoformat()}
            for u, a in session.exec(query).all()]
