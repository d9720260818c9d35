{#
  One row per order domain event (event-carried state: the whole order as of the event),
  typed; a redelivered event (same event id: Connect delivers at least once) counts once.
#}
with source as (

    select * from {{ ref('bronze_order_events') }}

),

typed as (

    select
        _event_id as event_id,
        _event_type as event_type,
        _schema_version as schema_version,
        cast(_aggregate_id as bigint) as order_id,
        customer_id,
        warehouse_id,
        status,
        currency,
        cast(total_amount as decimal(12, 2)) as total_amount,
        cast(placed_at as timestamptz) as placed_at,
        cast(updated_at as timestamptz) as updated_at,
        coalesce(item_count, len(items)) as line_count,
        list_sum(list_transform(items, i -> i.quantity)) as units,
        _source_ts as committed_at,
        _commit_lsn,
        _lsn,
        _offset
    from source

),

deduplicated as (

    select *
    from typed
    qualify row_number() over (partition by event_id order by _offset) = 1

)

select * from deduplicated
