{# Every change event of shop.products, from complete bronze batches only. #}
with landed as (

    {{ complete_bronze_events('products') }}

),

renamed as (

    select
        product_id,
        sku,
        name,
        category_id,
        price,
        cost,
        description,
        attributes,
        active,
        created_at,
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
