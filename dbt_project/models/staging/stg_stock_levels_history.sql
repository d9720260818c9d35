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
        {{ cdc_event_columns() }}
    from landed

)

select * from renamed
