"""Which bronze Parquet files belong to complete batches (the only ones that count).

A batch is landed only when all n of its files exist (docs/design.md); the rule lives in
``pipelines.bronze.files``, so this model asks it instead of re-implementing it in SQL.
"""

from pathlib import Path

import pyarrow as pa


def model(dbt, session):
    dbt.config(materialized="table")
    from pipelines.bronze import files
    from pipelines.naming import QualifiedName

    lake = Path(dbt.config.get("lake")).resolve()
    rows = {"table_name": [], "file_name": []}
    for table in dbt.config.get("tables"):
        for path in files(lake, QualifiedName("shop", table)):
            rows["table_name"].append(table)
            rows["file_name"].append(path.name)
    return pa.table(
        rows, schema=pa.schema([("table_name", pa.string()), ("file_name", pa.string())])
    )
