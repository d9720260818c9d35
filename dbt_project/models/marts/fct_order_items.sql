{# One row per order line, joined to the product version valid when the order was created. #}
with items as (

    select * from {{ ref('stg_order_items') }}

),

orders as (

    select order_id, customer_sk, date_key, created_ts, status, is_revenue from {{ ref('fct_orders') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

final as (

    select
        items.order_id,
        items.line_no,
        products.product_sk,
        items.product_id,
        orders.customer_sk,
        orders.date_key,
        orders.status,
        orders.is_revenue,
        items.quantity,
        items.unit_price,
        items.line_amount,
        products.price as list_price_at_order
    from items
    inner join orders on orders.order_id = items.order_id
    left join products
        on products.product_id = items.product_id
        and products.valid_from <= orders.created_ts
        and (products.valid_to is null or orders.created_ts < products.valid_to)

)

select * from final
