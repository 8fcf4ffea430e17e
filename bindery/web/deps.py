"""What a route is given: the settings and jobs of the app, one database session per request, and the
caller behind the request's API token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from bindery.access import Actor
from bindery.db import session_scope
from bindery.settings import Settings
from bindery.web.credentials import NotAuthenticated, actor_for_token
from bindery.web.jobs import Jobs

bearer = HTTPBearer(auto_error=False, description="A personal API token (`bindery token create`)")


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def jobs_of(request: Request) -> Jobs:
    jobs: Jobs = request.app.state.jobs
    return jobs


SettingsDep = Annotated[Settings, Depends(settings_of)]
JobsDep = Annotated[Jobs, Depends(jobs_of)]


def request_session(settings: SettingsDep) -> Iterator[Session]:
    """The route's one transaction: committed when the route returned, rolled back when it raised."""
    with session_scope(settings) as session:
        yield session


# scope="function": the commit runs before the answer is sent, so a change the database refuses at
# commit is answered as the error it is (409, 503), never after a 2xx.
SessionDep = Annotated[Session, Depends(request_session, scope="function")]


def api_actor(settings: SettingsDep,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Actor:
    """The token's user, looked up (and its last use recorded) in a transaction of its own: the use
    stays recorded even when the route then fails."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("missing API token: send Authorization: Bearer <token>")
    with session_scope(settings) as session:
        return actor_for_token(session=session, token=credentials.credentials)


ActorDep = Annotated[Actor, Depends(api_actor)]
