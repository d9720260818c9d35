{#
  Revenue per UTC day of placement, from domain events alone: the total of the orders whose
  latest event leaves them paid or shipped (fct_orders' is_revenue), counted on the day the
  order was placed. Equal to the same figure from the CDC-built fct_orders.
#}
with lifecycle as (

    select * from {{ ref('fct_order_lifecycle') }}

),

final as (

    select
        cast(timezone('UTC', placed_at) as date) as revenue_date,
        count(*) as orders,
        sum(total_amount) as revenue
    from lifecycle
    where is_revenue
    group by 1

)

select * from final
