"""The Spark configuration that attaches a Spark session to the lake's catalog.

Iceberg's JDBC catalog reads the same tables pyiceberg's SQL catalog writes (``iceberg_tables``
rows keyed by ``catalog_name``), so Spark sees the lake when its catalog **is named**
``CHANGELAKE_ICEBERG_CATALOG_NAME`` (the JDBC catalog uses its Spark name as the
``catalog_name``) and points at the same PostgreSQL database. For an s3:// warehouse it reads
the objects with Iceberg's S3FileIO (the ``iceberg-aws-bundle`` jar) at the same endpoint with
the same credentials (``storage``). Needs the jars of connectors/runtime/spark-iceberg/pom.xml
on the session's classpath. The returned mapping holds the database password and the S3
secret: pass it to the session, never print it.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import make_url

from pipelines.config import Settings

SPARK_CATALOG = "org.apache.iceberg.spark.SparkCatalog"
S3_FILE_IO = "org.apache.iceberg.aws.s3.S3FileIO"
_SPARK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a conf-key segment and a bare identifier


def jdbc_catalog(settings: Settings) -> tuple[str, str, str]:
    """(JDBC URL, user, password) of a PostgreSQL catalog; ValueError for any other."""
    url = make_url(settings.iceberg_catalog_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(
            "other engines need a shared catalog: set CHANGELAKE_ICEBERG_CATALOG_URI to "
            f"postgresql+psycopg://... (now: a {url.get_backend_name()} catalog)"
        )
    port = f":{url.port}" if url.port else ""
    return (
        f"jdbc:postgresql://{url.host}{port}/{url.database}",
        url.username or "",
        url.password or "",
    )


def spark_catalog_conf(settings: Settings) -> dict[str, str]:
    """``spark.sql.catalog.<CHANGELAKE_ICEBERG_CATALOG_NAME>.*`` settings for the lake."""
    uri, user, password = jdbc_catalog(settings)
    name = settings.iceberg_catalog_name
    if not _SPARK_NAME.fullmatch(name):
        raise ValueError(f"CHANGELAKE_ICEBERG_CATALOG_NAME {name!r} cannot name a Spark catalog")
    pre = f"spark.sql.catalog.{name}"
    conf = {
        pre: SPARK_CATALOG,
        f"{pre}.type": "jdbc",
        f"{pre}.uri": uri,
        f"{pre}.jdbc.user": user,
        f"{pre}.jdbc.password": password,
        f"{pre}.warehouse": settings.iceberg_warehouse_location,
    }
    if settings.warehouse_on_s3:
        conf |= {
            f"{pre}.io-impl": S3_FILE_IO,
            f"{pre}.client.region": settings.s3_region,
            f"{pre}.s3.access-key-id": settings.s3_access_key_id,
            f"{pre}.s3.secret-access-key": settings.s3_secret_access_key.get_secret_value(),
            f"{pre}.s3.path-style-access": str(settings.s3_path_style_access).lower(),
        }
        if settings.s3_endpoint_url:
            conf[f"{pre}.s3.endpoint"] = settings.s3_endpoint_url
    return conf
