"""Where the stack keeps its state under ``CHANGELAKE_HOME``.

One object computes every path so ``up``, ``down --purge``, ``status`` and ``logs`` agree, and so
two checkouts with different homes never touch each other's files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.config import REPO_ROOT, Settings

COMPONENTS = ("postgres", "kafka", "connect")
JAR_SETS = ("kafka", "connect", "debezium")  # what every managed ``up`` needs
S3PROXY_JARS = "s3proxy"  # only for an s3:// warehouse on the managed endpoint
SPARK_JARS = "spark-iceberg"  # only for Spark attaching to the lake (tests, docs/iceberg.md)
CONNECTORS_DIR = REPO_ROOT / "connectors"
CONNECTOR_TEMPLATE = CONNECTORS_DIR / "postgres-connector.json"


@dataclass(frozen=True)
class Layout:
    """Paths of one stack instance (derived only from ``Settings.home``)."""

    home: Path

    @classmethod
    def of(cls, settings: Settings) -> Layout:
        return cls(settings.home.resolve())

    # --- jars (cached between runs; never purged by ``down --purge``) -----------------
    @property
    def jars(self) -> Path:
        return self.home / "jars"

    def jar_dir(self, name: str) -> Path:
        """Classpath dir of one JVM, or for ``debezium`` the plugin dir inside ``plugin_path``."""
        if name == "debezium":
            return self.plugin_path / "debezium-connector-postgres"
        return self.jars / name

    @property
    def plugin_path(self) -> Path:
        return self.jars / "plugins"

    def jar_marker(self, name: str) -> Path:
        return self.jars / f".{name}.resolved"

    # --- runtime state (``down --purge`` removes all but the jars: stack/purge.py) ---
    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def conf(self) -> Path:
        return self.home / "conf"

    @property
    def pg_data(self) -> Path:
        return self.home / "postgres" / "data"

    @property
    def pg_socket_dir(self) -> Path:
        return self.home / "postgres" / "socket"

    @property
    def kafka_data(self) -> Path:
        return self.home / "kafka" / "data"

    @property
    def s3_data(self) -> Path:
        """The managed S3 endpoint's objects: one folder per bucket (s3proxy's basedir)."""
        return self.home / "s3proxy" / "data"

    def pid_file(self, component: str) -> Path:
        return self.run / f"{component}.pid"

    def log_file(self, component: str) -> Path:
        """The log a user should read when ``component`` fails."""
        return self.logs / f"{component}.log"
