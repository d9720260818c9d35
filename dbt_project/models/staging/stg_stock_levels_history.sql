{# Every change event of shop.stock_levels, from complete bronze batches only. #}
with landed as (

    {{ complete_bronze_events('stock_levels') }}

),

renamed as (

    select
        warehouse_id,
        product_id,
        quantity,
        updated_at,
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
