"""Which bronze Parquet files belong to complete batches (the only ones that count).

A batch is landed only when all n of its files exist (docs/design.md); the rule lives in
``pipelines.bronze.files``, so this model asks it (``pipelines.dbtmodels``) instead of
re-implementing it in SQL.
"""


def model(dbt, session):
    dbt.config(materialized="table")
    from pipelines.dbtmodels import complete_files_table

    tables = [f"shop.{t}" for t in dbt.config.get("tables")]
    return complete_files_table(dbt.config.get("lake"), tables)
