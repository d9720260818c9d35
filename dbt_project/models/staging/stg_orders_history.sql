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
        {{ cdc_event_columns() }}
    from landed

)

select * from renamed
