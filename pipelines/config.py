"""One settings object for every part of changelake.

Everything configurable comes from the environment (prefix ``CHANGELAKE_``) or a ``.env``
file in the working directory, with defaults that work on a laptop. The CLI, the Dagster
code location, the tests and dbt (through ``CHANGELAKE_WAREHOUSE``) all read the same
values, so two checkouts can run side by side by changing ``CHANGELAKE_HOME`` and the ports.

The captured tables are declared in exactly one place, ``CHANGELAKE_TABLES``; the
connector config (``table.include.list``) and the Dagster assets are both derived from it.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipelines.naming import QualifiedName, split_name_list

REPO_ROOT = Path(__file__).resolve().parent.parent

DEMO_TABLES = (
    "shop.customers",
    "shop.addresses",
    "shop.categories",
    "shop.products",
    "shop.orders",
    "shop.order_items",
    "shop.payments",
    "shop.warehouses",
    "shop.stock_levels",
    "shop.stock_movements",
)


class Settings(BaseSettings):
    """All of changelake's configuration; see ``.env.example`` for the documented defaults."""

    model_config = SettingsConfigDict(
        env_prefix="CHANGELAKE_", env_file=".env", extra="ignore", frozen=True
    )

    # --- where state lives -------------------------------------------------------------
    home: Path = Field(REPO_ROOT / ".changelake", description="state: data dirs, logs, jars, pids")
    lake: Path | None = Field(
        None, description="lake root (bronze/silver/quarantine); default HOME/lake"
    )
    warehouse: Path | None = Field(
        None, description="DuckDB warehouse file; default HOME/warehouse.duckdb"
    )

    # --- PostgreSQL (the command side) ---------------------------------------------------
    pg_host: str = "127.0.0.1"
    pg_port: int = 54329
    pg_database: str = "changelake"
    pg_user: str = "changelake"
    pg_password: str = "changelake"  # local dev cluster on loopback; override in .env
    cdc_user: str = "changelake_cdc"
    cdc_password: str = "changelake_cdc"

    # --- Kafka / Connect ------------------------------------------------------------------
    bind_host: str = "127.0.0.1"
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    connect_port: int = 18083
    max_message_bytes: int = 16 * 1024 * 1024  # a row of up to 8 MB passes, JSON-encoded

    # --- Debezium -------------------------------------------------------------------------
    topic_prefix: str = "changelake"
    slot_name: str = "changelake_slot"
    publication_name: str = "changelake_pub"
    connector_name: str = "changelake-postgres"
    tables: Annotated[tuple[str, ...], NoDecode] = DEMO_TABLES
    heartbeat_interval_ms: int = 5000
    min_compaction_lag_ms: int = 7 * 24 * 3600 * 1000
    # "compact": topics of tables with a primary key are log-compacted (Kafka keeps the latest
    # version per key once the lake has landed it); TRUNCATE is not streamed, because Debezium
    # sends truncate events without a key and Kafka rejects key-less records on compacted topics.
    # Key-less tables always get delete-policy topics. "delete": every CDC topic keeps all
    # events (retention.ms=-1) and TRUNCATE is streamed and applied by silver.
    topic_cleanup_policy: Literal["compact", "delete"] = "compact"

    # --- landing ----------------------------------------------------------------------------
    batch_max_records: int = 50_000
    # decode + write Parquet in a child process while this one fetches (two cores instead of
    # one: kafka-python's pure-Python record parsing alone fills a core); false: one process
    lander_decode_process: bool = True

    # --- silver -------------------------------------------------------------------------------
    silver_keep_snapshots: int = 5  # ``retain`` keeps the newest N (and always ``current``)
    # ... and the newest snapshot of each such interval of history, so as_of stays fast (0: off)
    silver_keep_every_minutes: int = 60

    @field_validator("tables", mode="before")
    @classmethod
    def _split_tables(cls, value: object) -> object:
        if isinstance(value, str):
            value = split_name_list(value)
        return tuple(str(QualifiedName.parse(v)) for v in value)  # validates each name

    @cached_property
    def lake_root(self) -> Path:
        return (self.lake or self.home / "lake").resolve()

    @cached_property
    def warehouse_path(self) -> Path:
        return (self.warehouse or self.home / "warehouse.duckdb").resolve()

    @cached_property
    def captured(self) -> tuple[QualifiedName, ...]:
        return tuple(QualifiedName.parse(t) for t in self.tables)

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.bind_host}:{self.kafka_port}"

    @property
    def connect_url(self) -> str:
        return f"http://{self.bind_host}:{self.connect_port}"

    def pg_dsn(self, *, user: str | None = None, password: str | None = None) -> str:
        """libpq connection string for psycopg; the app role unless told otherwise."""
        return (
            f"host={self.pg_host} port={self.pg_port} dbname={self.pg_database} "
            f"user={user or self.pg_user} password={password or self.pg_password}"
        )


def get_settings() -> Settings:
    """Fresh settings from the current environment (cheap; tests change the environment)."""
    return Settings()
