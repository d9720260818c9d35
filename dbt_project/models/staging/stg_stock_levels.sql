with source as (

    select * from {{ source('silver', 'stock_levels') }}

),

renamed as (

    select
        warehouse_id,
        product_id,
        quantity,
        updated_at,
        _source_ts as _changed_at
    from source

)

select * from renamed
