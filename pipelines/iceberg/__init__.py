"""The lake as Apache Iceberg tables (issue #14): today a published copy of the Parquet lake.

``changelake publish`` (``publish.publish_lake``) appends every complete bronze batch and each
silver snapshot to the catalog's tables exactly once; docs/iceberg.md has the whole design.

- ``names``: namespaces and the reversible QualifiedName / topic <-> Iceberg identifier mapping
- ``catalog``: pyiceberg's SQL catalog (SQLite file or PostgreSQL) from Settings
- ``offsets``: Kafka coordinates and the committed-offsets record in a snapshot summary
- ``commit``: the exactly-once commit state machine (plan, stage, commit, retry)
- ``conform`` / ``evolve``: the lake's types and schema changes as Iceberg holds them
- ``bronze_publish`` / ``silver_publish`` / ``publish``: the Parquet lake into Iceberg
- ``expiry``: snapshot expiry of the published tables
- ``engine`` / ``spark`` / ``storage``: DuckDB, Spark and S3 access to the same tables
"""
