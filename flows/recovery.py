"""Flow `recover-crashed-run`: what Bindery does when Prefect says a provisioning run crashed (started
by the `bindery-recovery` automation that `bindery deploy` makes; see bindery.recovery)."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.states import Completed, State

from bindery.tasks import recovery


@flow(name="recover-crashed-run",
      description="Start a crashed provisioning run again (at most BINDERY_CRASH_RESTARTS times), or alert.")
def recover_crashed_run(flow_run_id: str) -> State[Any]:
    """Close the crashed run's history row and start its deployment again with the same parameters,
    after a backoff; once it crashed too often, send the bindery.provisioning.failed alert instead.

    Args:
        flow_run_id: The crashed flow run (its id, or the event resource id prefect.flow-run.<id>).
    """
    return Completed(message=recovery.recover(flow_run_id))
