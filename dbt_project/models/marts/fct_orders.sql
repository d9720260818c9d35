{#
  One row per order (current status from silver). The customer version is the one valid at
  the order's creation commit (its first CDC event), so a later email change does not
  rewrite history; orders read by the initial snapshot use placed_at instead.
#}
with orders as (

    select * from {{ ref('stg_orders') }}

),

created as (

    select order_id, min(case when _op = 'r' then placed_at else _source_ts end) as created_ts
    from {{ ref('stg_orders_history') }}
    where _op in ('r', 'c')
    group by order_id

),

items as (

    select order_id, count(*) as line_count, sum(quantity) as units, sum(line_amount) as items_amount
    from {{ ref('stg_order_items') }}
    group by order_id

),

payments as (

    select
        order_id,
        coalesce(sum(amount) filter (where kind = 'capture'), 0) as captured_amount,
        coalesce(sum(amount) filter (where kind = 'refund'), 0) as refunded_amount
    from {{ ref('stg_payments') }}
    group by order_id

),

customers as (

    select * from {{ ref('dim_customers') }}

),

final as (

    select
        orders.order_id,
        customers.customer_sk,
        orders.customer_id,
        orders.shipping_address_id,
        orders.warehouse_id,
        cast(strftime(orders.placed_at, '%Y%m%d') as integer) as date_key,
        orders.placed_at,
        created.created_ts,
        orders.status,
        orders.currency,
        orders.total_amount,
        coalesce(items.line_count, 0) as line_count,
        coalesce(items.units, 0) as units,
        coalesce(items.items_amount, 0) as items_amount,
        coalesce(payments.captured_amount, 0) as captured_amount,
        coalesce(payments.refunded_amount, 0) as refunded_amount,
        orders.status in ('paid', 'shipped') as is_revenue
    from orders
    left join created on created.order_id = orders.order_id
    left join items on items.order_id = orders.order_id
    left join payments on payments.order_id = orders.order_id
    left join customers
        on customers.customer_id = orders.customer_id
        and customers.valid_from <= created.created_ts
        and (customers.valid_to is null or created.created_ts < customers.valid_to)

)

select * from final
