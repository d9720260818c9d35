"""The lake as Apache Iceberg tables (issue #14): catalog, table names, exactly-once commits.

A library only: the bronze lander and silver compaction do not use it yet (docs/iceberg.md).

- ``names``: namespaces and the reversible QualifiedName <-> Iceberg identifier mapping
- ``catalog``: pyiceberg's SQL catalog (SQLite file or PostgreSQL) from Settings
- ``offsets``: Kafka coordinates and the committed-offsets record in a snapshot summary
- ``commit``: the exactly-once commit state machine (plan, stage, commit, retry)
- ``engine``: DuckDB's iceberg extension from the duckdb-extension-* packages
"""
