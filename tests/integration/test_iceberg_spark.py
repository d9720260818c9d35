"""Another engine reads the lake: Spark opens the same catalog and gets changelake's rows.

Iceberg's JDBC catalog over the same PostgreSQL database (and catalog name) pyiceberg's SQL
catalog writes, S3FileIO on the same s3proxy bucket: Spark reads the bronze table written by
``commit_batch`` and ``VERSION AS OF`` its first snapshot; then a lake landed from the real
connector's recorded messages is published (``changelake publish``'s function) and Spark reads
its bronze and silver tables, and ``VERSION AS OF`` the first silver snapshot, with the values
changelake reads from its own Parquet. The Spark session is one per test
session (its start is most of this test's time); the jars come from the shared jar cache
(connectors/runtime/spark-iceberg/pom.xml, resolved once).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from iceberg_lake import SCHEMA, TABLE, make_batch
from iceberg_s3 import s3_lake

from pipelines.config import Settings
from pipelines.iceberg.catalog import ensure_table, open_catalog
from pipelines.iceberg.commit import commit_batch
from pipelines.iceberg.names import BRONZE
from pipelines.iceberg.spark import spark_catalog_conf
from pipelines.stack import jvm
from pipelines.stack.layout import SPARK_JARS, Layout
from tests.conftest import StackHandle

pytestmark = pytest.mark.integration

NAME = "spark_reads"
COLUMNS = ("id", "_kafka_partition", "_offset", "payload")


@pytest.fixture(scope="session")
def spark(stack: StackHandle) -> Iterator[object]:
    from pyspark.sql import SparkSession

    layout = Layout.of(stack.settings)
    jvm.resolve_jars(layout, names=(SPARK_JARS,))  # once into the shared cache (marker)
    jars = ",".join(str(p) for p in sorted(Path(layout.jar_dir(SPARK_JARS)).glob("*.jar")))
    started = time.monotonic()
    session = (
        SparkSession.builder.master("local[2]")
        .appName("changelake-test")
        .config("spark.jars", jars)
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config(
            "spark.sql.extensions",
            "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        )
        .getOrCreate()
    )
    print(f"\nspark session: {time.monotonic() - started:.1f}s to start")
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="module")
def lake(stack: StackHandle) -> Iterator[Settings]:
    with s3_lake(stack, NAME) as settings:
        yield settings


def test_spark_reads_the_same_table_and_time_travels(lake: Settings, spark: object) -> None:
    started = time.monotonic()
    table = ensure_table(open_catalog(lake), BRONZE, TABLE, SCHEMA)
    first = commit_batch(table, make_batch(0, 0, 6)).snapshot_id
    commit_batch(table, make_batch(1, 0, 4))
    table.refresh()

    def rows(arrow) -> list[tuple]:  # noqa: ANN001
        return sorted(zip(*(arrow[c].to_pylist() for c in COLUMNS), strict=True))

    now, then = rows(table.scan().to_arrow()), rows(table.scan(snapshot_id=first).to_arrow())
    assert len(now) == 10 and len(then) == 6

    # the Spark catalog must carry the lake's catalog name: the JDBC catalog keys rows by it
    for key, value in spark_catalog_conf(lake).items():
        spark.conf.set(key, value)
    name = f"{lake.iceberg_catalog_name}.{BRONZE}.{table.name()[-1]}"
    cols = ", ".join(COLUMNS)
    spark_now = spark.sql(f"SELECT {cols} FROM {name}").collect()  # noqa: S608
    spark_then = spark.sql(f"SELECT {cols} FROM {name} VERSION AS OF {int(first)}").collect()  # noqa: S608
    assert sorted(tuple(r) for r in spark_now) == now
    assert sorted(tuple(r) for r in spark_then) == then
    # Iceberg engines reserve ``_partition`` for a metadata column: the lake's Kafka partition
    # column is ``_kafka_partition`` in Iceberg (conform), so SELECT * works
    assert len(spark.sql(f"SELECT * FROM {name}").collect()) == 10  # noqa: S608
    print(f"\nspark test: {time.monotonic() - started:.1f}s after the session")


def _plain_columns(arrow) -> list[str]:  # noqa: ANN001
    """Columns whose values Spark and pyarrow give as the same Python objects (no temporal
    types: Spark gives naive local datetimes; no nested types: Spark gives Rows)."""
    import pyarrow as pa

    plain = (pa.types.is_integer, pa.types.is_string, pa.types.is_decimal, pa.types.is_boolean)
    return [f.name for f in arrow.schema if any(p(f.type) for p in plain)]


def _order(row: tuple) -> tuple:
    return tuple((v is None, str(v)) for v in row)


def _spark_rows(spark, source: str, columns: list[str]) -> list[tuple]:  # noqa: ANN001
    cols = ", ".join(f"`{c}`" for c in columns)
    rows = spark.sql(f"SELECT {cols} FROM {source}").collect()  # noqa: S608
    return sorted((tuple(r) for r in rows), key=_order)


def _arrow_rows(arrow, columns: list[str]) -> list[tuple]:  # noqa: ANN001
    return sorted(zip(*(arrow[c].to_pylist() for c in columns), strict=True), key=_order)


def test_spark_reads_the_published_lake_and_its_first_silver_state(
    lake: Settings, spark: object, tmp_path: Path
) -> None:
    import recorded_lake
    from iceberg_checks import publish_in_two_halves

    from pipelines.iceberg import engine
    from pipelines.iceberg.catalog import load_table
    from pipelines.iceberg.names import SILVER
    from pipelines.iceberg.silver_publish import iceberg_snapshot_for
    from pipelines.naming import QualifiedName
    from pipelines.silver import snapshots

    started = time.monotonic()
    # its own lake (the stack's stays as it is), times as microseconds: Spark refuses Iceberg
    # time; silver partitioned by key ranges of one key each (truncate), as large tables are
    own = lake.model_copy(
        update={
            "lake": tmp_path / "lake",
            "iceberg_time_as_micros": True,
            "iceberg_silver_partition_bytes": 1,
        }
    )
    local = own.lake_root
    report = publish_in_two_halves(own)
    assert report.rows > 0
    for key, value in spark_catalog_conf(own).items():
        spark.conf.set(key, value)
    catalog = open_catalog(own)
    qn = QualifiedName("zoo", "typezoo")
    # bronze: every event, by its Kafka coordinates and its plain values
    bronze = load_table(catalog, BRONZE, qn)
    ours = bronze.scan().to_arrow()
    cols = _plain_columns(ours)
    assert {"_offset", "_kafka_partition", "id"} <= set(cols)
    name = f"{own.iceberg_catalog_name}.{BRONZE}.{bronze.name()[-1]}"
    assert _spark_rows(spark, name, cols) == _arrow_rows(ours, cols)
    transactions = f"{own.iceberg_catalog_name}.{BRONZE}.`_transactions`"
    count = spark.sql(f"SELECT count(*) FROM {transactions}").collect()[0][0]  # noqa: S608
    assert count == len(recorded_lake.by_partition()[("zoo.transaction", 0)])
    # silver: the current state, and VERSION AS OF the first silver snapshot
    silver = load_table(catalog, SILVER, qn)
    assert "truncate" in str(silver.spec())  # Spark reads the partitioned layout
    first, last = snapshots.list_snapshots(local, qn)
    import pyarrow as pa
    import pyarrow.parquet as pq

    def silver_rows(m) -> object:  # noqa: ANN001
        from pipelines.iceberg.conform import to_iceberg

        parts = sorted(snapshots.snapshot_dir(local, qn, m.snapshot_id).glob("*.parquet"))
        rows = pa.concat_tables([pq.read_table(p) for p in parts])
        return to_iceberg(rows, time_as_micros=True)

    name = f"{own.iceberg_catalog_name}.{SILVER}.{silver.name()[-1]}"
    now = silver_rows(last)
    cols = _plain_columns(now)
    assert _spark_rows(spark, name, cols) == _arrow_rows(now, cols)
    version = iceberg_snapshot_for(silver, first.snapshot_id)
    then = silver_rows(first)
    old = f"{name} VERSION AS OF {int(version)}"
    assert _spark_rows(spark, old, cols) == _arrow_rows(then, cols)
    assert then.num_rows != now.num_rows or _arrow_rows(then, cols) != _arrow_rows(now, cols)
    # DuckDB reads the same S3 objects
    with engine.connect(own) as con:
        n = con.execute("SELECT count(*) FROM iceberg_scan(?)", [silver.metadata_location])
        assert n.fetchone()[0] == now.num_rows
    print(f"\nspark publish test: {time.monotonic() - started:.1f}s")
