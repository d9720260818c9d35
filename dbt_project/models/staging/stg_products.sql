with source as (

    select * from {{ source('silver', 'products') }}

),

renamed as (

    select
        product_id,
        sku,
        name as product_name,
        category_id,
        price,
        cost,
        length(description) as description_length,
        attributes,
        active,
        created_at,
        updated_at,
        _source_ts as _changed_at
    from source

)

select * from renamed
