"""One settings object for every part of changelake.

Everything configurable comes from the environment (prefix ``CHANGELAKE_``) or a ``.env``
file in the working directory, with defaults that work on a laptop. The CLI, the Dagster
code location, the tests and dbt (through ``CHANGELAKE_WAREHOUSE``) all read the same
values, so two checkouts can run side by side by changing ``CHANGELAKE_HOME`` and the ports.

The captured tables are declared in exactly one place, ``CHANGELAKE_TABLES``; the
connector config (``table.include.list``) and the Dagster assets are both derived from it.
Domain events are declared beside them: ``CHANGELAKE_OUTBOX_TABLES`` (captured, routed by the
Outbox Event Router) and ``CHANGELAKE_EVENT_AGGREGATES`` (the event topics landed).
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipelines.naming import QualifiedName, split_name_list

REPO_ROOT = Path(__file__).resolve().parent.parent
# an aggregate type becomes a topic-name segment and a bronze directory: keep it plain
_AGGREGATE = re.compile(r"[a-z][a-z0-9_]{0,62}")

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
DEMO_OUTBOX_TABLES = ("shop.outbox",)
DEMO_EVENT_AGGREGATES = ("order",)


# managed: changelake runs the component itself (native processes under HOME); external: someone
# else runs it and changelake only talks to it (never starts, stops or reconfigures it)
Mode = Literal["managed", "external"]

# Java client login modules per SASL mechanism (the Connect worker's clients)
_JAAS_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")  # S3's bucket naming rules


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

    # --- how the stack runs -----------------------------------------------------------------
    # "native": changelake's own processes for the managed components (see *_mode below);
    # "docker": docker compose starts all three and changelake treats them as external ones
    # (PostgreSQL, Kafka and Connect on the compose ports of 127.0.0.1; the connector reaches
    # PostgreSQL inside the compose network as postgres:5432)
    runtime: Literal["native", "docker"] = "native"

    # --- PostgreSQL (the command side) ---------------------------------------------------
    pg_mode: Mode = "managed"
    pg_host: str = "127.0.0.1"
    pg_port: int = 54329
    pg_database: str = "changelake"
    pg_user: str = "changelake"
    pg_password: str = "changelake"  # local dev cluster on loopback; override in .env
    cdc_user: str = "changelake_cdc"
    cdc_password: str = "changelake_cdc"
    # PostgreSQL as Connect's workers reach it, when that differs from pg_host/pg_port (Connect
    # in another network or container); empty/0: pg_host/pg_port
    connect_pg_host: str = ""
    connect_pg_port: int = 0

    # --- Kafka / Connect ------------------------------------------------------------------
    kafka_mode: Mode = "managed"
    connect_mode: Mode = "managed"
    bind_host: str = "127.0.0.1"
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    connect_port: int = 18083
    max_message_bytes: int = 16 * 1024 * 1024  # a row of up to 8 MB passes, JSON-encoded
    # external Kafka: its bootstrap list and client security (the lander's consumer and, when
    # Connect is managed, the Connect worker's clients)
    kafka_bootstrap_servers: str = ""
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_ssl_cafile: Path | None = None  # PEM bundle of the CAs that signed the brokers
    connect_rest_url: str = ""  # external Connect: its REST URL, e.g. http://connect:8083

    # --- Debezium -------------------------------------------------------------------------
    topic_prefix: str = "changelake"
    slot_name: str = "changelake_slot"
    publication_name: str = "changelake_pub"
    connector_name: str = "changelake-postgres"
    tables: Annotated[tuple[str, ...], NoDecode] = DEMO_TABLES
    # Domain events (the outbox pattern, ``pipelines/shop/outbox.py``): the outbox tables whose
    # rows Debezium's Outbox Event Router turns into events on ``<prefix>.events.<aggregate>``
    # (captured like the tables above, never landed as tables), and the aggregate types whose
    # event topics the lander lands, each into bronze ``_events/<aggregate>``.
    outbox_tables: Annotated[tuple[str, ...], NoDecode] = DEMO_OUTBOX_TABLES
    event_aggregates: Annotated[tuple[str, ...], NoDecode] = DEMO_EVENT_AGGREGATES
    heartbeat_interval_ms: int = 5000
    # ``status`` warns and a Dagster check fails when the slot retains more WAL than this
    max_slot_lag_bytes: int = 1024**3
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
    # where landed batches go: "parquet", the lake's own files (one lander per lake), or
    # "iceberg", straight into the Iceberg tables (pipelines/iceberg/landing.py), one commit
    # per table a batch feeds, its Kafka positions in the snapshot summary
    lake_format: Literal["parquet", "iceberg"] = "parquet"
    # "group": a member of the lake's consumer group, Kafka splits the partitions among the
    # live landers; "i/n": share i of n of the partitions, static (Iceberg only; empty: all)
    lander_member: str = ""

    # --- silver -------------------------------------------------------------------------------
    silver_keep_snapshots: int = 5  # ``retain`` keeps the newest N (and always ``current``)
    # ... and the newest snapshot of each such interval of history, so as_of stays fast (0: off)
    silver_keep_every_minutes: int = 60

    # --- the always-on service (``changelake run``) -------------------------------------------
    run_metrics_port: int = 9464  # Prometheus endpoint on BIND_HOST; 0: any free port
    run_compact_min_interval_s: float = 1.0  # compaction follows landings, at most this often
    run_maintenance_every_s: float = 600.0  # retention + catalog rewrite
    run_publish_every_s: float = 0.0  # publish to Iceberg (changelake publish) this often; 0: not
    run_report_every_s: float = 30.0  # runless Dagster events for what run landed/compacted

    # --- the demo shop's order API and notification enrichment (pipelines/enrich) -----------
    order_api_port: int = 18090  # `up` serves the order API on BIND_HOST:PORT; 0: not started
    order_api_rate: float = 500.0  # server-side limit, requests/s over all clients (429 beyond)
    order_api_burst: int = 100  # requests the server lets through at once before limiting
    order_api_db_connections: int = 4  # the API's PostgreSQL connections
    enrich_strategy: Literal["n_plus_one", "batched", "lake"] = "batched"
    enrich_batch_size: int = 100  # ids per batch call (batched)
    enrich_concurrency: int = 4  # batch calls in flight at once (batched)
    enrich_client_rate: float = 100.0  # client-side token bucket, calls/s (batched)
    enrich_max_retries: int = 8  # retries of one call answered 429, with exponential backoff

    # --- Iceberg (pipelines/iceberg: ``changelake publish`` copies bronze and silver there) --
    # SQLAlchemy URL of pyiceberg's SQL catalog; empty: a SQLite file LAKE/iceberg/catalog.db.
    # A shared catalog for several processes or engines: postgresql+psycopg://user:pw@host/db
    iceberg_catalog_uri: str = ""
    # the catalog_name rows are stored under (Spark/Trino must use the same name)
    iceberg_catalog_name: str = "changelake"
    # where table data and metadata live: a local folder or s3://bucket/prefix;
    # empty: LAKE/iceberg/warehouse
    iceberg_warehouse: str = ""
    # PostgreSQL ``time`` columns as Iceberg ``time`` (false) or as ``long`` microseconds since
    # midnight (true): Spark's Iceberg reader refuses any table with a time column
    iceberg_time_as_micros: bool = False
    # silver tables are partitioned by key so that a publish rewrites only the partitions
    # that changed; a partition aims at this many bytes of rows (in memory, Arrow); tables
    # under twice that stay unpartitioned (pipelines/iceberg/partitioning.py)
    iceberg_silver_partition_bytes: int = Field(default=16 * 2**20, ge=1)
    # bronze and quarantine: once a table has this many data files under SMALL_FILE_BYTES, a
    # publish rewrites them into few (pipelines/iceberg/rewrite.py); 0 turns rewrites off
    iceberg_rewrite_min_files: int = Field(default=16, ge=0)
    iceberg_small_file_bytes: int = Field(default=8 * 2**20, ge=1)
    # files under a table's location that no metadata references (a commit killed or beaten
    # before it landed) are deleted by lake maintenance once this old (pipelines/iceberg/orphans.py)
    iceberg_orphan_min_age_hours: float = Field(default=24.0, gt=0)

    # --- S3 (an s3:// iceberg_warehouse) ------------------------------------------------------
    # managed: changelake runs s3proxy (an S3 API over HOME/s3proxy/data) on BIND_HOST:S3_PORT,
    # started by ``up`` only when the warehouse is s3://; external: the S3 service at
    # S3_ENDPOINT (empty: AWS's own endpoint for S3_REGION)
    s3_mode: Mode = "managed"
    s3_port: int = 19000
    s3_endpoint: str = ""  # external: e.g. https://minio.example:9000
    s3_region: str = "us-east-1"
    s3_access_key_id: str = "changelake"
    s3_secret_access_key: SecretStr = SecretStr("changelake-s3")  # managed default; override
    s3_path_style_access: bool = True  # http://host/bucket/key (s3proxy, MinIO) vs bucket.host

    @field_validator("tables", "outbox_tables", mode="before")
    @classmethod
    def _split_tables(cls, value: object) -> object:
        if isinstance(value, str):
            value = split_name_list(value)
        return tuple(str(QualifiedName.parse(v)) for v in value)  # validates each name

    @field_validator("event_aggregates", mode="before")
    @classmethod
    def _split_aggregates(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        out = tuple(value)  # type: ignore[arg-type]
        bad = [a for a in out if not _AGGREGATE.fullmatch(a)]
        if bad:
            raise ValueError(f"event aggregate types must match {_AGGREGATE.pattern}: {bad}")
        return out

    @model_validator(mode="before")
    @classmethod
    def _docker_runtime_is_external(cls, data: Any) -> Any:
        """The docker runtime: every component external, at the compose file's addresses."""
        if not isinstance(data, dict) or data.get("runtime") != "docker":
            return data
        data = dict(data)
        host = data.get("bind_host") or "127.0.0.1"
        data |= {"pg_mode": "external", "kafka_mode": "external", "connect_mode": "external"}
        data.setdefault("pg_host", host)
        kafka_port = data.get("kafka_port") or 19092
        connect_port = data.get("connect_port") or 18083
        data["kafka_bootstrap_servers"] = (
            data.get("kafka_bootstrap_servers") or f"{host}:{kafka_port}"
        )
        data["connect_rest_url"] = data.get("connect_rest_url") or f"http://{host}:{connect_port}"
        data["connect_pg_host"] = data.get("connect_pg_host") or "postgres"
        data["connect_pg_port"] = data.get("connect_pg_port") or 5432
        return data

    @model_validator(mode="after")
    def _external_needs_addresses(self) -> Settings:
        if self.kafka_mode == "external" and not self.kafka_bootstrap_servers.strip():
            raise ValueError(
                "CHANGELAKE_KAFKA_MODE=external needs CHANGELAKE_KAFKA_BOOTSTRAP_SERVERS"
            )
        if self.connect_mode == "external" and not self.connect_rest_url.strip():
            raise ValueError("CHANGELAKE_CONNECT_MODE=external needs CHANGELAKE_CONNECT_REST_URL")
        if self.warehouse_on_s3:
            self.s3_bucket  # noqa: B018 - validates the bucket name now, not at first use
        return self

    def model_copy(self, *, update: dict | None = None, deep: bool = False) -> Settings:
        """A copy with ``update`` applied whose derived values (``lake_root``, ``captured``,
        ...) follow the updated fields: pydantic copies the instance dict, and with it what a
        ``cached_property`` computed from the old values."""
        copy = super().model_copy(update=update, deep=deep)
        for name in _DERIVED:
            copy.__dict__.pop(name, None)
        return copy

    @cached_property
    def lake_root(self) -> Path:
        return (self.lake or self.home / "lake").resolve()

    @cached_property
    def warehouse_path(self) -> Path:
        return (self.warehouse or self.home / "warehouse.duckdb").resolve()

    @cached_property
    def iceberg_catalog_url(self) -> str:
        """The SQL catalog's SQLAlchemy URL (default: a SQLite file under the lake)."""
        if self.iceberg_catalog_uri.strip():
            return self.iceberg_catalog_uri.strip()
        return f"sqlite:///{self.lake_root / 'iceberg' / 'catalog.db'}"

    @cached_property
    def iceberg_warehouse_location(self) -> str:
        """Root of the Iceberg tables' files: a URI (s3://...) or an absolute local path."""
        configured = self.iceberg_warehouse.strip()
        if "://" in configured:
            return configured.rstrip("/")
        return str(
            Path(configured).resolve() if configured else self.lake_root / "iceberg" / "warehouse"
        )

    @property
    def warehouse_on_s3(self) -> bool:
        return self.iceberg_warehouse_location.startswith("s3://")

    @cached_property
    def s3_bucket(self) -> str:
        """The bucket of an s3:// warehouse (a folder of the managed endpoint: validated)."""
        location = self.iceberg_warehouse_location
        if not location.startswith("s3://"):
            raise ValueError(f"the Iceberg warehouse is not on S3: {location}")
        bucket = location.removeprefix("s3://").split("/", 1)[0]
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise ValueError(
                f"CHANGELAKE_ICEBERG_WAREHOUSE: {bucket!r} is not an S3 bucket name "
                "(3-63 characters of a-z, 0-9, '.', '-'; starting and ending alphanumeric)"
            )
        return bucket

    @property
    def s3_managed(self) -> bool:
        """Whether ``up`` runs the S3 endpoint (s3proxy): an s3:// warehouse, S3_MODE=managed."""
        return self.warehouse_on_s3 and self.s3_mode == "managed"

    @property
    def s3_endpoint_url(self) -> str:
        """The S3 endpoint clients use; empty: the client's default (AWS for the region)."""
        if self.s3_mode == "managed":
            return f"http://{self.bind_host}:{int(self.s3_port)}"
        return self.s3_endpoint.strip().rstrip("/")

    @cached_property
    def captured(self) -> tuple[QualifiedName, ...]:
        return tuple(QualifiedName.parse(t) for t in self.tables)

    @cached_property
    def outboxes(self) -> tuple[QualifiedName, ...]:
        """The outbox tables: captured for their events, never landed as tables."""
        return tuple(QualifiedName.parse(t) for t in self.outbox_tables)

    def managed(self, component: str) -> bool:
        """Whether changelake runs ``component`` (postgres, kafka or connect) itself."""
        mode = {"postgres": self.pg_mode, "kafka": self.kafka_mode, "connect": self.connect_mode}
        return mode[component] == "managed"

    @property
    def bootstrap_servers(self) -> str:
        if self.kafka_mode == "external":
            return self.kafka_bootstrap_servers.strip()
        return f"{self.bind_host}:{self.kafka_port}"

    @property
    def connect_url(self) -> str:
        if self.connect_mode == "external":
            return self.connect_rest_url.strip().rstrip("/")
        return f"http://{self.bind_host}:{self.connect_port}"

    def kafka_client_options(self) -> dict[str, Any]:
        """kafka-python keyword arguments: where Kafka is and how to log in (every client)."""
        opts: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol.startswith("SASL"):
            opts |= {
                "sasl_mechanism": self.kafka_sasl_mechanism,
                "sasl_plain_username": self.kafka_sasl_username,
                "sasl_plain_password": self.kafka_sasl_password,
            }
        if self.kafka_ssl_cafile is not None:
            opts["ssl_cafile"] = str(self.kafka_ssl_cafile)
        return opts

    def kafka_java_properties(self) -> dict[str, str]:
        """The same settings as Java client properties (the Connect worker and its clients)."""
        props = {"security.protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol.startswith("SASL"):
            user = self.kafka_sasl_username.replace("\\", "\\\\").replace('"', '\\"')
            secret = self.kafka_sasl_password.replace("\\", "\\\\").replace('"', '\\"')
            props |= {
                "sasl.mechanism": self.kafka_sasl_mechanism,
                "sasl.jaas.config": f"{_JAAS_MODULES[self.kafka_sasl_mechanism]} required "
                f'username="{user}" password="{secret}";',
            }
        if self.kafka_ssl_cafile is not None:
            props |= {
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": str(self.kafka_ssl_cafile),
            }
        return props

    def pg_dsn(self, *, user: str | None = None, password: str | None = None) -> str:
        """libpq connection string for psycopg; the app role unless told otherwise."""
        return (
            f"host={self.pg_host} port={self.pg_port} dbname={self.pg_database} "
            f"user={user or self.pg_user} password={password or self.pg_password}"
        )


def settings_env(settings: Settings) -> dict[str, str]:
    """Settings as CHANGELAKE_* variables, so a subprocess sees exactly this configuration."""
    out = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, tuple):
            value = ",".join(value)
        out[f"CHANGELAKE_{name.upper()}"] = str(value)
    return out


def get_settings() -> Settings:
    """Fresh settings from the current environment (cheap; tests change the environment)."""
    return Settings()


_DERIVED = tuple(n for n, v in vars(Settings).items() if isinstance(v, cached_property))
