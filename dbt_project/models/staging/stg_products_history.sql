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
        {{ cdc_event_columns() }}
    from landed

)

select * from renamed
