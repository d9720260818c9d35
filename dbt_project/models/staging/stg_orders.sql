with source as (

    select * from {{ source('silver', 'orders') }}

),

renamed as (

    select
        order_id,
        customer_id,
        shipping_address_id,
        warehouse_id,
        cast(status as varchar) as status,
        total_amount,
        currency,
        placed_at,
        updated_at,
        _source_ts as _changed_at
    from source

)

select * from renamed
