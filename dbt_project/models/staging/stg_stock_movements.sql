with source as (

    select * from {{ source('silver', 'stock_movements') }}

),

renamed as (

    select
        movement_id,
        warehouse_id,
        product_id,
        quantity_delta,
        reason,
        order_id,
        created_at,
        _source_ts as _changed_at
    from source

)

select * from renamed
