with source as (

    select * from {{ source('silver', 'order_items') }}

),

renamed as (

    select
        order_id,
        line_no,
        product_id,
        quantity,
        unit_price,
        quantity * unit_price as line_amount,
        _source_ts as _changed_at
    from source

)

select * from renamed
