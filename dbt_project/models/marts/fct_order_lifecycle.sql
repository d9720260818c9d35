{#
  One row per order, from its domain events alone (no operational table): when it was placed,
  paid, shipped, cancelled or refunded (the commit instants of those events), the durations
  between the steps, and its latest state as the latest event carried it. Events of one order
  are ordered by LSN (its state changes are serialised by the order's row lock).
#}
with events as (

    select * from {{ ref('stg_order_events') }}

),

steps as (

    select
        order_id,
        min(committed_at) filter (where event_type = 'OrderPlaced') as placed_committed_at,
        min(committed_at) filter (where event_type = 'OrderPaid') as paid_at,
        min(committed_at) filter (where event_type = 'OrderShipped') as shipped_at,
        min(committed_at) filter (where event_type = 'OrderCancelled') as cancelled_at,
        min(committed_at) filter (where event_type = 'OrderRefunded') as refunded_at,
        count(*) as event_count,
        max(schema_version) as max_schema_version
    from events
    group by order_id

),

latest as (

    select *
    from events
    qualify row_number() over (partition by order_id order by _lsn desc, _offset desc) = 1

),

final as (

    select
        latest.order_id,
        latest.customer_id,
        latest.warehouse_id,
        latest.status,
        latest.currency,
        latest.total_amount,
        latest.line_count,
        latest.units,
        latest.placed_at,
        steps.placed_committed_at,
        steps.paid_at,
        steps.shipped_at,
        steps.cancelled_at,
        steps.refunded_at,
        epoch(steps.paid_at - latest.placed_at) as seconds_to_pay,
        epoch(steps.shipped_at - steps.paid_at) as seconds_to_ship,
        epoch(steps.shipped_at - latest.placed_at) as seconds_to_ship_from_placed,
        steps.cancelled_at is not null as is_cancelled,
        latest.status in ('paid', 'shipped') as is_revenue,
        steps.event_count,
        steps.max_schema_version
    from latest
    inner join steps on steps.order_id = latest.order_id

)

select * from final
