"""Bronze: land decoded change events as append-only Parquet, exactly once.

Readers (``files``, ``scan``, ``key_columns``, ``landed_offsets``) are what silver, dbt and
checks use; ``land`` is the lander the CLI and Dagster call.  See docs/design.md for layout.
"""

from pipelines.bronze.reader import (
    NoBronzeData,
    bronze_tables,
    files,
    key_columns,
    landed_offsets,
    scan,
)

__all__ = [
    "NoBronzeData",
    "bronze_tables",
    "files",
    "key_columns",
    "landed_offsets",
    "scan",
]
