"""Another engine reads the lake: Spark opens the same catalog and gets pyiceberg's rows.

Iceberg's JDBC catalog over the same PostgreSQL database (and catalog name) pyiceberg's SQL
catalog writes, S3FileIO on the same s3proxy bucket: Spark reads the bronze table written by
``commit_batch`` and ``VERSION AS OF`` its first snapshot. The Spark session is one per test
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
# ``id`` encodes the partition (iceberg_lake.make_batch); ``_partition`` itself cannot be read
# by Spark: it is the name of Iceberg's reserved ``_partition`` metadata column (below)
COLUMNS = ("id", "_offset", "payload")


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
    # bronze's ``_partition`` column collides with Iceberg's reserved metadata column: Spark
    # refuses any read of it (SELECT * too). The lake contract must rename it before bronze
    # is Iceberg (docs/iceberg.md); this fails once it is renamed, to update the docs.
    with pytest.raises(Exception, match="reserved for Iceberg metadata columns"):  # noqa: B017
        spark.sql(f"SELECT _partition FROM {name}").collect()  # noqa: S608
    print(f"\nspark test: {time.monotonic() - started:.1f}s after the session")
