"""The files ``changelake dbt scaffold`` writes for one schema, as text (no I/O here).

Per schema folder ``models/changelake_scaffold/<schema>/``: ``_sources.yml`` (the silver and
bronze sources, read the way dbt_project/models/staging/_sources.yml reads them, plus the
bronze-files model's config), ``changelake_bronze_files__<schema>.py`` (complete bronze
batches, ``pipelines.dbtmodels``), and per table ``stg_<schema>__<table>`` (current rows) and,
for a table with a primary key, ``int_<schema>__<table>_versions`` (SCD2 from CDC with the
project's ``scd2_from_cdc`` macro), each with its yml. Every name from outside is quoted for
SQL (``quote_ident``), written as a Jinja string literal (``jinja_str``) or dumped by YAML.
"""

# ruff: noqa: S608  -- dbt model text; every outside name goes through quote_ident/jinja_str
from __future__ import annotations

import yaml

from pipelines.dbtenv import (
    BRONZE_TABLES_META,
    ICEBERG_ALIAS,
    ICEBERG_TARGET,
    SOURCE_LAYER_META,
    SOURCE_TABLE_META,
    on_target,
)
from pipelines.dbtmodels import source_table_name
from pipelines.dbtscaffold.tables import TableSpec, bronze_path, silver_path
from pipelines.iceberg.names import table_name as iceberg_name
from pipelines.naming import QualifiedName, quote_ident

# the lake root as dbt sees it: the expression dbt_project/models/staging/_sources.yml uses
LAKE = "{{ env_var('CHANGELAKE_LAKE', '../.changelake/lake') }}"
BRONZE_OPTIONS = "union_by_name = true, hive_partitioning = true, filename = true"
STAGING = {"materialized": "table", "schema": "staging", "meta": {"dagster": {"group": "staging"}}}
INTERMEDIATE = {
    "materialized": "table",
    "schema": "intermediate",
    "meta": {"dagster": {"group": "intermediate"}},
}


def schema_part(table: QualifiedName) -> str:
    """The schema's ``[A-Za-z0-9_]`` name part (of ``asset_name``): folder and model names."""
    return table.asset_name.split("__", 1)[0]


def names(table: QualifiedName) -> dict[str, str]:
    """The dbt names scaffold gives ``table``'s sources and models."""
    sp, tp = schema_part(table), source_table_name(table)
    return {
        "silver": f"changelake_silver__{sp}",
        "bronze": f"changelake_bronze__{sp}",
        "files": f"changelake_bronze_files__{sp}",
        "table": tp,
        "staging": f"stg_{sp}__{tp}",
        "versions": f"int_{sp}__{tp}_versions",
    }


def jinja_str(text: str) -> str:
    """``text`` as a Jinja string literal: anything but plain ASCII is a ``\\u`` escape."""
    out = []
    for c in text:
        if c.isascii() and (c.isalnum() or c in " _-.,:;()[]<>=+*/!?@$&|~^"):
            out.append(c)
        else:
            out.append(f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")
    return "'" + "".join(out) + "'"


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: object) -> bool:  # a shared dict is written out, not &id001
        return True


def _yaml(doc: object) -> str:
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return "version: 2\n\n" + body


def sources_yml(specs: list[TableSpec]) -> str:
    first = names(specs[0].table)
    keyed = [s for s in specs if s.key]

    def entry(spec: TableSpec, layer: str, location: str) -> dict:
        meta = {SOURCE_TABLE_META: str(spec.table), SOURCE_LAYER_META: layer}
        return {"name": names(spec.table)["table"], "meta": {**meta, "external_location": location}}

    silver = [
        entry(
            s,
            "silver",
            on_target(
                ICEBERG_TARGET,
                f"(select * from {ICEBERG_ALIAS}.silver.{quote_ident(iceberg_name(s.table))})",
                f"read_parquet('{LAKE}/{silver_path(s.table)}/current/*.parquet')",
            ),
        )
        for s in specs
    ]
    bronze = [
        entry(
            s,
            "bronze",
            on_target(
                ICEBERG_TARGET,
                f"(select * from {ICEBERG_ALIAS}.bronze.{quote_ident(iceberg_name(s.table))})",
                f"read_parquet('{LAKE}/{bronze_path(s.table)}/*/*.parquet', {BRONZE_OPTIONS})",
            ),
        )
        for s in keyed
    ]
    schema = specs[0].table.schema
    doc: dict = {
        "sources": [
            {
                "name": first["silver"],
                "description": f"Current rows (changelake silver) of schema {schema}.",
                "tables": silver,
            }
        ]
    }
    if keyed:
        doc["sources"].append(
            {
                "name": first["bronze"],
                "description": f"Change events (changelake bronze) of schema {schema}; read "
                f"complete batches only, through {first['files']}.",
                "tables": bronze,
            }
        )
        tables = [str(s.table) for s in keyed]
        doc["models"] = [
            {
                "name": first["files"],
                "description": "One row per bronze file of a complete batch (the bronze contract).",
                "config": {
                    **STAGING,
                    "lake": LAKE,
                    "tables": tables,
                    "meta": {**STAGING["meta"], BRONZE_TABLES_META: tables},
                },
            }
        ]
    return _yaml(doc)


FILES_PY = '''"""Bronze files of complete batches for this schema's tables (see pipelines.dbtmodels)."""


def model(dbt, session):
    dbt.config(materialized="table")
    from pipelines.dbtmodels import complete_files_table

    return complete_files_table(dbt.config.get("lake"), dbt.config.get("tables"))
'''


def _select(columns: tuple[str, ...], extra: list[str], indent: int = 4) -> str:
    pad = " " * indent
    return ",\n".join(f"{pad}{c}" for c in [*(quote_ident(c) for c in columns), *extra])


def staging_sql(spec: TableSpec) -> str:
    n = names(spec.table)
    extra = []
    if spec.has_source_ts and "_changed_at" not in spec.columns:
        extra.append("_source_ts as _changed_at")
    return f"""{{# Current rows of one captured table (changelake silver): one row per live key. #}}
with source as (

    select * from {{{{ source('{n["silver"]}', '{n["table"]}') }}}}

)

select
{_select(spec.columns, extra)}
from source
"""


def staging_yml(spec: TableSpec) -> str:
    n = names(spec.table)
    model: dict = {
        "name": n["staging"],
        "description": f"Current rows of {spec.table} (changelake silver)."
        + ("" if spec.key else " The table has no primary key: no key tests, no SCD2 model."),
        "config": STAGING,
        "columns": [{"name": c, "quote": True} for c in spec.columns],
    }
    quoted = [quote_ident(k) for k in spec.key]
    if len(quoted) == 1:
        model["data_tests"] = [
            {"unique": {"column_name": quoted[0]}},
            {"not_null": {"column_name": quoted[0]}},
        ]
    elif quoted:
        model["data_tests"] = [
            {"unique_combination": {"arguments": {"columns": quoted}}},
            *({"not_null": {"column_name": q}} for q in quoted),
        ]
    return _yaml({"models": [model]})


def versions_sql(spec: TableSpec) -> str:
    n = names(spec.table)
    keys = ", ".join(jinja_str(k) for k in spec.key)
    values = ", ".join(jinja_str(c) for c in spec.values)
    files = f"complete_bronze_events('{n['table']}', '{n['bronze']}', '{n['files']}')"
    return f"""{{# SCD2 versions of one captured table from its change events (changelake bronze,
   complete batches only); the rules are macros/scd2_from_cdc.sql's. #}}
with landed as (

    {{{{ {files} }}}}

),

history as (

    select
{_select(spec.columns, ["{{ cdc_event_columns() }}"], 8)}
    from landed

),

{{{{ scd2_from_cdc('history', [{keys}], [{values}]) }}}}

select * from versions
"""


def versions_yml(spec: TableSpec) -> str:
    n = names(spec.table)
    keys = [quote_ident(k) for k in spec.key]
    model = {
        "name": n["versions"],
        "description": f"Versions of each row of {spec.table} over commit time "
        "(valid_from inclusive, valid_to exclusive; is_current: the live row).",
        "config": INTERMEDIATE,
        "data_tests": [
            {"scd2_one_current_per_key": {"arguments": {"key_columns": keys}}},
            {"scd2_no_overlap": {"arguments": {"key_columns": keys}}},
        ],
        "columns": [
            *({"name": c, "quote": True} for c in spec.columns),
            {"name": "valid_from", "data_tests": ["not_null"]},
            {"name": "valid_to"},
            {"name": "is_current", "data_tests": ["not_null"]},
        ],
    }
    return _yaml({"models": [model]})


def schema_files(specs: list[TableSpec]) -> dict[str, str]:
    """``{file name: text}`` for one schema's folder (all ``specs`` share the schema)."""
    out = {"_sources.yml": sources_yml(specs)}
    if any(s.key for s in specs):
        out[f"{names(specs[0].table)['files']}.py"] = FILES_PY
    for spec in specs:
        n = names(spec.table)
        out[f"{n['staging']}.sql"] = staging_sql(spec)
        out[f"{n['staging']}.yml"] = staging_yml(spec)
        if spec.key:
            out[f"{n['versions']}.sql"] = versions_sql(spec)
            out[f"{n['versions']}.yml"] = versions_yml(spec)
    return out
