"""Resources built from ``Settings`` (environment, prefix ``CHANGELAKE_``).

Each resource is a thin handle: the stage functions (``bronze.land``, ``silver.compact``...)
take a ``Settings``, so ``ChangelakeResource.settings()`` rebuilds exactly the settings the
Definitions were loaded with. Nothing here opens a connection at import time, so the code
location loads with no services running.

No secret is part of any resource's config: Dagster stores resource config in its snapshots and
the UI shows it. The ``*_password`` settings are left out and read from the environment
(``CHANGELAKE_PG_PASSWORD``...) or ``.env`` when a run needs them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource

from pipelines.config import Settings
from pipelines.dbtenv import DBT_PROJECT_DIR, dbt_executable

# Settings never put into resource config (see module doc).
SECRET_SETTINGS = frozenset(name for name in Settings.model_fields if name.endswith("password"))


class ChangelakeResource(dg.ConfigurableResource):
    """The settings every stage function takes, secrets excepted (read from env at run time)."""

    lake_root: str
    warehouse: str
    settings_json: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ChangelakeResource:
        return cls(
            lake_root=str(settings.lake_root),
            warehouse=str(settings.warehouse_path),
            settings_json=settings.model_dump_json(exclude=set(SECRET_SETTINGS)),
        )

    def settings(self) -> Settings:
        """The Settings the code location was loaded with (init values beat env); secrets from
        the environment of the process running the step."""
        values = json.loads(self.settings_json)
        values["lake"], values["warehouse"] = self.lake_root, self.warehouse
        return Settings(**values)

    @property
    def lake(self) -> Path:
        return Path(self.lake_root)


class KafkaResource(dg.ConfigurableResource):
    """Where the Debezium topics live; end offsets come from ``pipelines.stack.end_offsets``."""

    bootstrap_servers: str
    topic_prefix: str

    def end_offsets(self, settings: Settings) -> dict[tuple[str, int], int]:
        """Log-end offset of every (topic, partition) of the captured tables."""
        from pipelines.stack import end_offsets  # late: the stack package talks to Kafka

        return end_offsets(settings)


class PostgresReadOnlyResource(dg.ConfigurableResource):
    """A read-only PostgreSQL session for checks: one consistent snapshot per ``connect()``.

    No config of its own: address, role and password come from the ``Settings`` passed in
    (``ChangelakeResource.settings()``, whose password is read from the environment)."""

    @contextmanager
    def connect(self, settings: Settings) -> Iterator[psycopg.Connection]:
        """REPEATABLE READ, read-only: every query in the block sees the same snapshot."""
        with psycopg.connect(settings.pg_dsn(), autocommit=False, connect_timeout=10) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            try:
                yield conn
            finally:
                conn.rollback()


def build_resources(settings: Settings) -> dict[str, object]:
    """All resources of the code location, from one Settings."""
    return {
        "changelake": ChangelakeResource.from_settings(settings),
        "kafka": KafkaResource(
            bootstrap_servers=settings.bootstrap_servers, topic_prefix=settings.topic_prefix
        ),
        "postgres": PostgresReadOnlyResource(),
        "warehouse": DuckDBResource(database=str(settings.warehouse_path)),
        "dbt": DbtCliResource(
            project_dir=str(DBT_PROJECT_DIR),
            profiles_dir=str(DBT_PROJECT_DIR),
            dbt_executable=dbt_executable(),
        ),
    }
