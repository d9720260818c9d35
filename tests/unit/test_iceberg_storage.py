"""S3 settings reach pyiceberg, DuckDB and s3proxy alike, and the secret is never shown."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pipelines.config import Settings
from pipelines.iceberg.engine import connect, extension_directory
from pipelines.iceberg.spark import spark_catalog_conf
from pipelines.iceberg.storage import duckdb_secret_sql, fileio_properties
from pipelines.stack import s3proxy
from pipelines.stack.layout import Layout

pytestmark = pytest.mark.unit

SECRET = "s3cr3t'\\x"  # a quote and a backslash: quoted for SQL and for .properties


def s3_settings(home: Path, **kw: object) -> Settings:
    return Settings(
        _env_file=None,
        home=home,
        iceberg_warehouse="s3://lake-bucket/cl",
        s3_secret_access_key=SECRET,
        **kw,
    )


def test_managed_endpoint_only_for_an_s3_warehouse(tmp_path: Path) -> None:
    assert not Settings(_env_file=None, home=tmp_path).s3_managed
    managed = s3_settings(tmp_path, s3_port=19555, bind_host="127.0.0.2")
    assert managed.s3_managed and managed.s3_bucket == "lake-bucket"
    assert managed.s3_endpoint_url == "http://127.0.0.2:19555"
    external = s3_settings(tmp_path, s3_mode="external", s3_endpoint="https://minio.example:9000/")
    assert not external.s3_managed
    assert fileio_properties(external)["s3.endpoint"] == "https://minio.example:9000"
    aws = s3_settings(tmp_path, s3_mode="external", s3_path_style_access=False)
    assert "s3.endpoint" not in fileio_properties(aws)  # the SDK's own AWS endpoint
    assert fileio_properties(aws)["s3.path-style-access"] == "false"
    for bad in ("s3://Upper/x", "s3://a_b/x", "s3://ab/x", "s3://a..b/x"):
        with pytest.raises(ValueError, match="bucket name"):
            Settings(_env_file=None, home=tmp_path, iceberg_warehouse=bad)


def test_the_secret_is_never_printed(tmp_path: Path) -> None:
    settings = s3_settings(tmp_path)
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert SECRET not in settings.model_dump_json()
    assert fileio_properties(settings)["s3.secret-access-key"] == SECRET


def test_duckdb_gets_an_s3_secret_and_a_home_extension_directory(tmp_path: Path) -> None:
    settings = s3_settings(tmp_path, s3_port=19555)
    sql = duckdb_secret_sql(settings)
    assert "ENDPOINT '127.0.0.1:19555'" in sql and "USE_SSL false" in sql
    assert "SCOPE 's3://lake-bucket'" in sql and "URL_STYLE 'path'" in sql
    con = connect(settings)
    assert con.execute("SELECT current_setting('extension_directory')").fetchone() == (
        str(extension_directory(settings)),
    )
    assert str(extension_directory(settings)).startswith(str(tmp_path))
    rows = con.execute(
        "SELECT name, type, scope FROM duckdb_secrets() WHERE name = 'changelake_s3'"
    ).fetchall()
    assert rows == [("changelake_s3", "s3", ["s3://lake-bucket"])]
    loaded = con.execute(
        "SELECT extension_name FROM duckdb_extensions() WHERE loaded ORDER BY 1"
    ).fetchall()
    assert {"avro", "httpfs", "iceberg"} <= {r[0] for r in loaded}
    which = "SELECT name FROM which_secret('s3://lake-bucket/cl/x', 's3')"
    assert con.execute(which).fetchall() == [("changelake_s3",)]
    assert connect(Settings(_env_file=None, home=tmp_path)).execute(which).fetchall() == []


def test_s3proxy_config_holds_the_secret_in_a_private_file(tmp_path: Path) -> None:
    settings = s3_settings(tmp_path, s3_port=19555)
    layout = Layout.of(settings)
    s3proxy.write_config(settings, layout)
    path = Path(s3proxy.properties_path(layout))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "s3proxy.credential=s3cr3t'\\\\x\n" in text  # .properties: backslash escaped
    assert "s3proxy.endpoint=http://127.0.0.1:19555\n" in text
    assert "s3proxy.ignore-unknown-headers=true\n" in text
    assert f"jclouds.filesystem.basedir={layout.s3_data}\n" in text
    s3proxy.ensure_bucket(settings, layout)
    assert (layout.s3_data / "lake-bucket").is_dir()


def test_spark_attaches_under_the_lake_catalog_name(tmp_path: Path) -> None:
    settings = s3_settings(
        tmp_path,
        iceberg_catalog_uri="postgresql+psycopg://app:pw@db.example:5433/cat",
        iceberg_catalog_name="shop_lake",
    )
    conf = spark_catalog_conf(settings)
    assert conf["spark.sql.catalog.shop_lake"] == "org.apache.iceberg.spark.SparkCatalog"
    assert conf["spark.sql.catalog.shop_lake.uri"] == "jdbc:postgresql://db.example:5433/cat"
    assert conf["spark.sql.catalog.shop_lake.jdbc.user"] == "app"
    assert conf["spark.sql.catalog.shop_lake.warehouse"] == "s3://lake-bucket/cl"
    assert conf["spark.sql.catalog.shop_lake.s3.secret-access-key"] == SECRET
    assert conf["spark.sql.catalog.shop_lake.s3.endpoint"] == "http://127.0.0.1:19000"
    with pytest.raises(ValueError, match="shared catalog"):  # SQLite: Spark cannot share it
        spark_catalog_conf(Settings(_env_file=None, home=tmp_path))
    with pytest.raises(ValueError, match="Spark catalog"):
        spark_catalog_conf(
            s3_settings(
                tmp_path,
                iceberg_catalog_uri="postgresql+psycopg://app:pw@db/cat",
                iceberg_catalog_name="a.b",
            )
        )
