{# Every change event of shop.orders, from complete bronze batches only. #}
with events as (

    select * from {{ source('bronze', 'orders') }}

),

complete_files as (

    select file_name from {{ ref('bronze_complete_files') }} where table_name = 'orders'

),

landed as (

    select events.*
    from events
    where parse_filename(events.filename) in (select file_name from complete_files)

),

renamed as (

    select
        order_id,
        customer_id,
        cast(status as varchar) as status,
        total_amount,
        placed_at,
        _op,
        _source_ts,
        _commit_lsn,
        _lsn,
        _tx_id,
        _offset,
        coalesce(_unavailable, []::varchar[]) as _unavailable
    from landed

)

select * from renamed
