{# Every change event of shop.orders, from complete bronze batches only. #}
with landed as (

    {{ complete_bronze_events('orders') }}

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
