"""The always-on service, ``changelake run``: supervised stages over the same functions the
CLI, the Dagster assets and the tests call (land, compact, catalog, retention)."""

from pipelines.service.runner import RunOptions, RunSummary, run_service
from pipelines.service.state import AlreadyRunning, read_status, running_pid

__all__ = [
    "AlreadyRunning",
    "RunOptions",
    "RunSummary",
    "read_status",
    "run_service",
    "running_pid",
]
