{#
  Stock quantity and value (at the list price then valid) of every (warehouse, product) at
  every hour mark from the first to the hour after the last stock change: the state at the
  instant hour_ts, i.e. all changes committed at or before it.
#}
with stock as (

    select * from {{ ref('fct_inventory_history') }}

),

products as (

    select product_id, price, valid_from, valid_to from {{ ref('dim_products') }}

),

bounds as (

    select
        date_trunc('hour', min(_source_ts)) as first_hour,
        date_trunc('hour', max(_source_ts)) + interval 1 hour as last_hour
    from {{ ref('stg_stock_levels_history') }}

),

hours as (

    select hour_ts
    from bounds, range(bounds.first_hour, bounds.last_hour + interval 1 hour, interval 1 hour) as t(hour_ts)

),

final as (

    select
        hours.hour_ts,
        cast(strftime(hours.hour_ts, '%Y%m%d') as integer) as date_key,
        stock.warehouse_id,
        stock.product_id,
        stock.quantity,
        products.price as unit_price,
        stock.quantity * products.price as stock_value
    from hours
    inner join stock
        on stock.valid_from <= hours.hour_ts
        and (stock.valid_to is null or hours.hour_ts < stock.valid_to)
    left join products
        on products.product_id = stock.product_id
        and products.valid_from <= hours.hour_ts
        and (products.valid_to is null or hours.hour_ts < products.valid_to)

)

select * from final
