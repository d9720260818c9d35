"""How every client reaches the lake's files: a local folder, or S3 at the configured endpoint.

One place turns ``Settings`` into each client's S3 options, so pyiceberg (its FileIO, through
the catalog's properties) and DuckDB (httpfs, through an S3 secret) read and write the same
objects with the same endpoint, region and credentials. A local warehouse needs neither. The
secret access key is only ever passed as a value, never logged or put on a command line.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pipelines.config import Settings
from pipelines.naming import quote_ident, quote_literal

DUCKDB_SECRET = "changelake_s3"


def fileio_properties(settings: Settings) -> dict[str, str]:
    """pyiceberg FileIO properties (``s3.*``) for an s3:// warehouse; {} for a local one."""
    if not settings.warehouse_on_s3:
        return {}
    props = {
        "s3.region": settings.s3_region,
        "s3.access-key-id": settings.s3_access_key_id,
        "s3.secret-access-key": settings.s3_secret_access_key.get_secret_value(),
        "s3.path-style-access": "true" if settings.s3_path_style_access else "false",
    }
    if settings.s3_endpoint_url:
        props["s3.endpoint"] = settings.s3_endpoint_url
    return props


def duckdb_secret_sql(settings: Settings) -> str:
    """``CREATE OR REPLACE SECRET`` giving DuckDB's httpfs the warehouse bucket (S3 only)."""
    options = {
        "TYPE": "s3",
        "KEY_ID": quote_literal(settings.s3_access_key_id),
        "SECRET": quote_literal(settings.s3_secret_access_key.get_secret_value()),
        "REGION": quote_literal(settings.s3_region),
        "URL_STYLE": quote_literal("path" if settings.s3_path_style_access else "vhost"),
        "SCOPE": quote_literal(f"s3://{settings.s3_bucket}"),
    }
    if settings.s3_endpoint_url:
        url = urlsplit(settings.s3_endpoint_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(f"S3 endpoint is not an http(s) URL: {settings.s3_endpoint_url!r}")
        options["ENDPOINT"] = quote_literal(url.netloc)  # DuckDB wants host:port, no scheme
        options["USE_SSL"] = "true" if url.scheme == "https" else "false"
    body = ", ".join(f"{k} {v}" for k, v in options.items())
    return f"CREATE OR REPLACE SECRET {quote_ident(DUCKDB_SECRET)} ({body})"
