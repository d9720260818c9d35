{#
  SCD type 2 versions of one table, derived from its CDC event history (bronze), not from
  polling snapshots.

  relation      : change events with the source columns plus _op, _source_ts, _commit_lsn,
                  _lsn, _offset, _unavailable (see docs/design.md)
  key_columns   : the primary key
  value_columns : the columns to carry into each version (source names, as in _unavailable)
  Both are plain names, quoted here (macros/lake.sql ident), so any column name works.

  Rules, in order:
  1. Events are ordered per key by (_commit_lsn, _lsn, _offset): commit order, then the
     change's position inside its transaction, then the Kafka offset. An incremental-snapshot
     read has no _lsn and sorts after the changes of its _commit_lsn (silver's ORDER_LSN rule):
     it was read after them, before any later commit.
  2. Unchanged-TOAST: a column listed in _unavailable is NULL in that event and keeps the
     previous event's value. The value is wrapped in a struct so a real NULL set by an update
     is carried as NULL and not skipped by IGNORE NULLS.
  3. Several changes of one key in one transaction are one version (the last one): nobody
     outside the transaction could see the intermediate rows. An incremental-snapshot read
     sharing a commit LSN with real changes restates the last of them, which is kept.
  4. A version is valid on [valid_from, valid_to) in commit time (_source_ts); the next
     event of the key closes it, a delete ('d') closes it without opening a new one.
  5. The first version of a key that comes from the initial snapshot ('r') is back-dated to
     1900-01-01: it existed before capture began, we only do not know since when.
  6. An incremental-snapshot read that restates the key's previous version unchanged is not a
     version of its own (it is a re-read, not a change).
  Truncate events ('t') carry no key and are ignored here (documented limitation).
#}
{% macro scd2_from_cdc(relation, key_columns, value_columns) %}
{%- set quoted = [] -%}
{%- for k in key_columns %}{% do quoted.append(ident(k)) %}{% endfor -%}
{%- set keys = quoted | join(', ') -%}
{%- set order = '_commit_lsn nulls first, _lsn nulls last, _offset' -%}
events as (

    select *
    from {{ relation }}
    where _op in ('r', 'c', 'u', 'd')

),

toast_filled as (

    select
        {{ keys }},
        _op,
        _source_ts,
        _commit_lsn,
        _lsn,
        _offset,
        {%- for col in value_columns %}
        (last_value(
            case when list_contains(_unavailable, {{ sql_literal(col) }}) then null
                 else struct_pack(v := {{ ident(col) }}) end
            ignore nulls
        ) over per_key).v as {{ ident(col) }}{{ ',' if not loop.last }}
        {%- endfor %}
    from events
    window per_key as (
        partition by {{ keys }} order by {{ order }}
        rows between unbounded preceding and current row
    )

),

last_in_transaction as (

    select *
    from toast_filled
    qualify row_number() over (
        partition by {{ keys }}, _commit_lsn order by _lsn desc nulls last, _offset desc
    ) = 1

),

{%- set row_values -%}
struct_pack({% for col in value_columns %}{{ ident(col) }} := {{ ident(col) }}{{ ', ' if not loop.last }}{% endfor %})
{%- endset %}
restated as (

    select
        *,
        _op = 'r'
        and lag(_op) over per_key <> 'd'
        and {{ row_values }} is not distinct from lag({{ row_values }}) over per_key as is_restated
    from last_in_transaction
    window per_key as (partition by {{ keys }} order by {{ order }})

),

sequenced as (

    select
        *,
        lead(_source_ts) over (partition by {{ keys }} order by {{ order }}) as next_change_ts,
        row_number() over (partition by {{ keys }} order by {{ order }}) as event_number
    from restated
    where not coalesce(is_restated, false)

),

versions as (

    select
        {{ keys }},
        {%- for col in value_columns %}
        {{ ident(col) }},
        {%- endfor %}
        case when _op = 'r' and event_number = 1 then timestamptz '1900-01-01 00:00:00+00'
             else _source_ts end as valid_from,
        next_change_ts as valid_to,
        next_change_ts is null as is_current,
        _op as version_op,
        _source_ts as version_source_ts,
        _commit_lsn as version_commit_lsn
    from sequenced
    where _op <> 'd'

)
{% endmacro %}
