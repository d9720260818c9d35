"""dbt-duckdb plugin for the ``iceberg`` target: every dbt connection can read Iceberg.

``dbt_project/profiles.yml``'s ``iceberg`` output names this module under ``plugins``. dbt-duckdb
calls ``configure_connection`` on each connection it opens; it loads DuckDB's iceberg extension
from the ``duckdb-extension-*`` packages (DuckDB cannot download it here) and, for an s3://
warehouse, creates the S3 secret from changelake's settings (temporary, so the warehouse file
never holds it). The target attaches ``<lake>/iceberg/catalog.duckdb`` read-only; its views
are what the sources read (``dbt_project/models/staging/_sources.yml``).
"""

from __future__ import annotations

from dbt.adapters.duckdb.plugins import BasePlugin


class Plugin(BasePlugin):
    def configure_connection(self, conn) -> None:  # noqa: ANN001 (a DuckDBPyConnection)
        from pipelines.config import get_settings
        from pipelines.iceberg import engine

        engine.configure(conn, get_settings())
