"""Checks the Iceberg tests share: a published table against the lake it was published from."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
import recorded_lake
from pyiceberg.table import Table

from pipelines.bronze import reader
from pipelines.config import Settings
from pipelines.iceberg import engine
from pipelines.iceberg import timetravel as iceberg_tt
from pipelines.iceberg.catalog import load_table, open_catalog
from pipelines.iceberg.conform import to_iceberg
from pipelines.iceberg.names import BRONZE
from pipelines.iceberg.publish import PublishReport, publish_lake
from pipelines.naming import QualifiedName, quote_ident
from pipelines.silver import timetravel


def iceberg_table(settings: Settings, layer: str, name: QualifiedName | str) -> Table:
    return load_table(open_catalog(settings), layer, name)


def text_rows(con: duckdb.DuckDBPyConnection, source: str, columns: list[str]) -> list[tuple]:
    cols = ", ".join(f"CAST({c} AS VARCHAR)" for c in columns)
    return con.sql(f"SELECT {cols} FROM {source} ORDER BY ALL").fetchall()  # noqa: S608


def comparable(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, str]:
    """Column -> DuckDB type, without the types Iceberg holds in another form (durations and
    intervals are numbers or structs there; checked by test_iceberg_conform)."""
    rows = con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()  # noqa: S608
    return {r[0]: r[1] for r in rows if "INTERVAL" not in r[1]}


def assert_bronze_equal(
    settings: Settings, name: QualifiedName | str, ignore: tuple[str, ...] = ()
) -> None:
    """Iceberg bronze == changelake's bronze, column by column as text, row by row (but the
    columns ``ignore`` names)."""
    table = iceberg_table(settings, BRONZE, name)
    with engine.connect(settings) as con:
        lake = reader.scan(con, settings.lake_root, name)
        con.register("lake_rows", lake)
        ice = f"iceberg_scan('{table.metadata_location}')"
        lake_cols, ice_cols = comparable(con, "lake_rows"), comparable(con, ice)
        kept = {c.split("__")[0]: c for c in ice_cols if "__" in c}  # incompatible type changes
        pairs = []
        for col in lake_cols:
            if col in ignore:
                continue
            target = "_kafka_partition" if col == "_partition" else col
            if target not in ice_cols:
                assert col in kept or lake_cols[col].startswith("STRUCT"), (name, col)
                continue
            ice_expr = quote_ident(target)
            if col in kept:  # old values live in the renamed column
                ice_expr = f"coalesce(CAST({ice_expr} AS VARCHAR), CAST({quote_ident(kept[col])} AS VARCHAR))"
            pairs.append((quote_ident(col), ice_expr))
        got = text_rows(con, ice, [p[1] for p in pairs])
        want = text_rows(con, "lake_rows", [p[0] for p in pairs])
    assert len(got) == len(want) > 0, name
    assert got == want, name


def table_offsets(table: Table) -> Counter:
    rows = table.scan(selected_fields=("_topic", "_kafka_partition", "_offset")).to_arrow()
    return Counter(zip(*(rows[c].to_pylist() for c in rows.column_names), strict=True))


def lake_offsets(settings: Settings, name: QualifiedName | str) -> Counter:
    with duckdb.connect() as con:
        rel = reader.scan(con, settings.lake_root, name).select("_topic, _partition, _offset")
        return Counter(rel.fetchall())


def sorted_text(rows: pa.Table, exprs: list[str]) -> list[tuple]:
    with duckdb.connect() as con:
        con.register("r", rows)
        return con.sql(f"SELECT {', '.join(exprs)} FROM r ORDER BY ALL").fetchall()  # noqa: S608


def as_text(column: str) -> str:
    return f"CAST({quote_ident(column)} AS VARCHAR)"


def commit_instants(settings: Settings, qn: QualifiedName, most: int) -> list[datetime]:
    with duckdb.connect() as con:
        rel = reader.scan(con, settings.lake_root, qn)
        con.register("b", rel)
        found = [r[0] for r in con.sql("SELECT DISTINCT _source_ts FROM b ORDER BY 1").fetchall()]
    step = max(len(found) // most, 1)
    return found[::step] + [found[-1], found[-1] + timedelta(hours=1)]


def publish_in_two_halves(settings: Settings) -> PublishReport:
    """The recorded lake's first half landed, compacted and published, then the rest: two silver
    snapshots per table, each published (the second publish's report)."""
    lake = settings.lake_root
    recorded_lake.land(lake, parts=2, upto=0.5)
    recorded_lake.compact_all(lake)
    publish_lake(settings)
    recorded_lake.land_rest(lake, after=0.5)
    recorded_lake.compact_all(lake)
    return publish_lake(settings)


def assert_same_as_the_lake(settings: Settings, qn: QualifiedName, instants: list[datetime]) -> int:
    """``as_of`` from Iceberg == the lake's ``as_of`` at each instant; how many were non-empty."""
    non_empty = 0
    for ts in instants:
        want = to_iceberg(timetravel.as_of(settings, qn, ts))
        assert_same_rows(iceberg_tt.as_of(settings, qn, ts), want, (qn, ts))
        non_empty += bool(want.num_rows)
    return non_empty


def assert_same_rows(got: pa.Table, want: pa.Table, label: object) -> None:
    """Iceberg rows ``got`` == the lake's ``want`` (conformed), column by column as text."""
    common = [c for c in want.column_names if c in got.column_names]
    assert set(want.column_names) - set(common) <= {"_partition"}, label
    # an incompatible type change keeps the old values in <name>__<type> (evolve)
    kept = {c.split("__")[0]: c for c in got.column_names if "__" in c}
    theirs = [
        f"coalesce({as_text(c)}, {as_text(kept[c])})" if c in kept else as_text(c) for c in common
    ]
    assert sorted_text(got, theirs) == sorted_text(want, [as_text(c) for c in common]), label
