"""Open the lake's Iceberg catalog (pyiceberg's SQL catalog) and its tables from Settings.

The default is an embedded SQLite file under the lake (one machine, a few processes);
``CHANGELAKE_ICEBERG_CATALOG_URI`` points at a shared database instead (PostgreSQL), whose
``iceberg_tables`` / ``iceberg_namespace_properties`` layout is the one Iceberg's JDBC catalog
uses, so Spark and Trino can open the same catalog.

Every table changelake creates has pyiceberg's own commit retry switched off
(``commit.retry.num-retries=0``): that retry rebases a failed append onto the new table state
with the snapshot summary it was built with, which would write a stale offsets map
(see ``commit``). Conflicts surface as ``CommitFailedException`` to ``commit``'s own retry.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec
from pyiceberg.table import Table
from sqlalchemy.exc import IntegrityError, OperationalError

from pipelines.config import Settings
from pipelines.iceberg import pyiceberg_fixes
from pipelines.iceberg.names import NAMESPACES, identifier
from pipelines.iceberg.storage import fileio_properties
from pipelines.naming import QualifiedName

pyiceberg_fixes.apply()  # NULL lists of structs stay NULL (see the module)

T = TypeVar("T")
PYICEBERG_RETRIES = "commit.retry.num-retries"
TABLE_PROPERTIES = {PYICEBERG_RETRIES: "0", "format-version": "2"}
SQLITE_BUSY_TIMEOUT_S = 30  # concurrent committers wait for SQLite's write lock this long


def catalog_properties(settings: Settings) -> dict[str, str]:
    """pyiceberg SqlCatalog properties (uri, warehouse, S3 FileIO) for ``settings``."""
    uri = settings.iceberg_catalog_url
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///").split("?")[0]).parent.mkdir(parents=True, exist_ok=True)
        if "timeout=" not in uri:
            uri += ("&" if "?" in uri else "?") + f"timeout={SQLITE_BUSY_TIMEOUT_S}"
    warehouse = settings.iceberg_warehouse_location
    if "://" not in warehouse:
        Path(warehouse).mkdir(parents=True, exist_ok=True)
    return {"uri": uri, "warehouse": warehouse, **fileio_properties(settings)}


def _sql_catalog(settings: Settings, attempts: int = 5) -> SqlCatalog:
    """pyiceberg's SqlCatalog; it creates its own tables on first use (checks, then creates),
    so a process racing another on a new catalog database can get "already exists": the
    other one made them, and the next attempt finds them."""
    for attempt in range(1, attempts + 1):
        try:
            return SqlCatalog(settings.iceberg_catalog_name, **catalog_properties(settings))
        except OperationalError as exc:
            if "already exists" not in str(exc) or attempt == attempts:
                raise
            conflict_backoff(attempt)
    raise AssertionError("unreachable")


def open_catalog(settings: Settings, *, create_namespaces: bool = True) -> SqlCatalog:
    """The lake's catalog; creates its tables and the bronze/silver/quarantine namespaces."""
    catalog = _sql_catalog(settings)
    if create_namespaces:
        for namespace in NAMESPACES:
            try:
                catalog.create_namespace_if_not_exists(namespace)
            except IntegrityError:
                # another process created it between pyiceberg's check and its insert
                # (pyiceberg does not turn this race into NamespaceAlreadyExistsError)
                if not catalog.namespace_exists(namespace):
                    raise
    return catalog


def ensure_table(
    catalog: SqlCatalog,
    layer: str,
    name: QualifiedName | str,
    schema: pa.Schema,
    partition_spec: PartitionSpec = UNPARTITIONED_PARTITION_SPEC,
) -> Table:
    """The Iceberg table of ``name`` in ``layer``, created with ``schema`` if it is missing.

    An existing table keeps its schema (``evolve`` changes it); its pyiceberg retry is
    switched off if someone switched it back on. An existing table is loaded, not created
    again: pyiceberg's ``create_table_if_not_exists`` writes a new metadata file before it
    finds the table there, which would leave one orphan file per open.
    """
    ident = identifier(layer, name)
    try:
        table = catalog.load_table(ident)
    except NoSuchTableError:  # then create it; a racing creator makes this load it instead
        table = catalog.create_table_if_not_exists(
            ident, schema=schema, partition_spec=partition_spec, properties=TABLE_PROPERTIES
        )
    if table.properties.get(PYICEBERG_RETRIES) != "0":
        with table.transaction() as tx:
            tx.set_properties({PYICEBERG_RETRIES: "0"})
    return table


def load_table(catalog: SqlCatalog, layer: str, name: QualifiedName | str) -> Table:
    """The existing Iceberg table of ``name`` in ``layer`` (NoSuchTableError if absent)."""
    return catalog.load_table(identifier(layer, name))


def conflict_backoff(attempt: int, base_s: float = 0.05) -> None:
    """Sleep before retry ``attempt`` after losing a commit race (jittered, exponential)."""
    time.sleep(random.uniform(0, base_s * 2 ** min(attempt, 6)))


def retry_on_conflict(table: Table, step: Callable[[], T], *, attempts: int = 8) -> T:
    """Run ``step`` (which decides from ``table``'s state, then commits); when a concurrent
    commit made it fail, refresh ``table``, back off and run it again."""
    for attempt in range(1, attempts + 1):
        try:
            return step()
        except CommitFailedException:
            if attempt == attempts:
                raise
            table.refresh()
            conflict_backoff(attempt)
    raise AssertionError("unreachable")


def set_properties(table: Table, properties: dict[str, str]) -> None:
    """Set table properties not already set (retried on a concurrent commit)."""

    def step() -> None:
        missing = {k: v for k, v in properties.items() if table.properties.get(k) != v}
        if missing:
            with table.transaction() as tx:
                tx.set_properties(missing)

    retry_on_conflict(table, step)
