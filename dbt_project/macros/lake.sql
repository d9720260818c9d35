{# The lake root as the dbt process sees it (dbt runs with this project as its cwd). #}
{% macro lake_root() -%}
    {{ env_var('CHANGELAKE_LAKE', '../.changelake/lake') }}
{%- endmacro %}

{# A stable surrogate key: md5 over the parts, NULL-safe and separator-delimited. #}
{% macro surrogate_key(parts) -%}
    md5(concat_ws('|', {% for p in parts %}coalesce(cast({{ p }} as varchar), '<null>'){% if not loop.last %}, {% endif %}{% endfor %}))
{%- endmacro %}

{# Every change event of one bronze table that belongs to a complete landed batch.
   A crash mid-batch can leave files of an unfinished batch until the lander's next start;
   bronze_complete_files (pipelines.bronze.files) lists only batches with all their files;
   changelake dbt scaffold's models pass their own source and files model. On the iceberg
   target every row of an Iceberg bronze table is complete (a batch is published whole, in one
   commit), and the Kafka partition is named _kafka_partition there. #}
{% macro complete_bronze_events(table_name, source_name='bronze', files_model='bronze_complete_files') -%}
  {%- if target.name == 'iceberg' %}
    select events.* exclude (_kafka_partition), events._kafka_partition as _partition
    from {{ source(source_name, table_name) }} as events
  {%- else %}
    select events.*
    from {{ source(source_name, table_name) }} as events
    where parse_filename(events.filename) in (
        select file_name
        from {{ ref(files_model) }}
        where table_name = {{ sql_literal(table_name) }}
    )
  {%- endif %}
{%- endmacro %}

{# A name from outside (a column of a captured table) as a quoted SQL identifier. #}
{% macro ident(name) -%}
    "{{ name | replace('"', '""') }}"
{%- endmacro %}

{# A string as a SQL literal. #}
{% macro sql_literal(value) -%}
    '{{ value | replace("'", "''") }}'
{%- endmacro %}

{# The CDC metadata every *_history staging model carries: what happened, when it committed,
   and the order keys (commit LSN, LSN, Kafka offset) that SCD2 validity is built from. #}
{% macro cdc_event_columns() -%}
        _op,
        _source_ts,
        _commit_lsn,
        _lsn,
        _tx_id,
        _offset,
        coalesce(_unavailable, []::varchar[]) as _unavailable
{%- endmacro %}
