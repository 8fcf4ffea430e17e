"""One real `prefect server` (Basic auth, on a free port, never 4200) with every deployment of
prefect.yaml, shared by the tests of the group ``prefect-server`` (one xdist worker runs them all)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bindery.deployments.local_cluster import prefect_server as running_server

PREFECT_GROUP = pytest.mark.xdist_group("prefect-server")


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with running_server(tmp_path_factory.mktemp("prefect")) as env:
        yield env
