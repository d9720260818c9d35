"""What dbt Python models call: the bronze contract, asked instead of restated in SQL.

``bronze_complete_files`` (the hand-written project) and every model that
``changelake dbt scaffold`` writes for a schema's bronze files return this table, which the
``complete_bronze_events`` macro (dbt_project/macros/lake.sql) filters bronze events by.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa

from pipelines.bronze import files
from pipelines.bronze.layout import list_lake
from pipelines.naming import QualifiedName, quote_ident


def source_table_name(table: QualifiedName) -> str:
    """The dbt source table name of ``table`` (``[A-Za-z0-9_]``, distinct per table of a
    schema): the table part of ``asset_name``, so ordinary names stay as they are."""
    return table.asset_name.split("__", 1)[1]


def complete_files_table(lake: str | Path, tables: Iterable[QualifiedName | str]) -> pa.Table:
    """One row per bronze file of a complete batch: (table_name, file_name), where table_name
    is ``source_table_name`` and file_name the base name. ``tables``: names or ``schema.table``."""
    lake = Path(lake).resolve()
    listing = list_lake(lake)  # one walk judges every table alike
    rows: dict[str, list[str]] = {"table_name": [], "file_name": []}
    for t in tables:
        qn = t if isinstance(t, QualifiedName) else QualifiedName.parse(t)
        for path in files(lake, qn, listing):
            rows["table_name"].append(source_table_name(qn))
            rows["file_name"].append(path.name)
    return pa.table(
        rows, schema=pa.schema([("table_name", pa.string()), ("file_name", pa.string())])
    )


def event_rows(lake: str | Path, aggregate: str, expected: pa.Schema) -> pa.Table:
    """Every landed domain event of ``aggregate`` (bronze ``_events/<aggregate>``, complete
    batches only), as ``expected``'s columns: the versions' files unioned by name, a field a
    version lacks NULL, types cast to ``expected``. No event landed yet: an empty table of
    ``expected`` (an outbox not captured yet is no error for dbt)."""
    import duckdb

    from pipelines.decode.events import event_table

    paths = files(Path(lake).resolve(), event_table(aggregate))
    if not paths:
        return expected.empty_table()
    with duckdb.connect() as con:
        got = con.read_parquet([str(p) for p in paths], union_by_name=True).to_arrow_table()
    return _as_expected(got, expected)


def iceberg_event_rows(session: object, aggregate: str, expected: pa.Schema) -> pa.Table:
    """``event_rows`` on dbt's ``iceberg`` target: the rows of the Iceberg bronze table of
    ``aggregate``'s events (every row is of a whole batch: one batch is one commit), read in
    ``session`` (dbt's DuckDB connection) through the DuckDB file over the lake's Iceberg
    tables, attached as ``dbtenv.ICEBERG_ALIAS``; the Kafka partition named ``_partition``
    again. No such table yet: empty, as ``event_rows``."""
    from pipelines.contract import ICEBERG_COLUMN_NAMES
    from pipelines.dbtenv import ICEBERG_ALIAS
    from pipelines.decode.events import event_table
    from pipelines.iceberg.names import BRONZE, table_name

    name = table_name(event_table(aggregate))
    found = session.execute(  # type: ignore[attr-defined]
        "SELECT count(*) FROM duckdb_views() "
        "WHERE database_name = ? AND schema_name = ? AND view_name = ?",
        [ICEBERG_ALIAS, BRONZE, name],
    ).fetchone()[0]
    if not found:
        return expected.empty_table()
    relation = ".".join(quote_ident(part) for part in (ICEBERG_ALIAS, BRONZE, name))
    got = session.sql(f"SELECT * FROM {relation}").to_arrow_table()  # type: ignore[attr-defined]  # noqa: S608
    lake_names = {iceberg: lake for lake, iceberg in ICEBERG_COLUMN_NAMES.items()}
    return _as_expected(
        got.rename_columns([lake_names.get(c, c) for c in got.column_names]), expected
    )


def _as_expected(got: pa.Table, expected: pa.Schema) -> pa.Table:
    """``got``'s columns as ``expected``'s: cast, and NULL where ``got`` lacks one."""
    columns = [
        got.column(f.name).cast(f.type)
        if f.name in got.column_names
        else pa.nulls(len(got), f.type)
        for f in expected
    ]
    return pa.Table.from_arrays(columns, schema=expected)
