{# Calendar days from 2020 (or the first order, if earlier) to a year past the last order. #}
with bounds as (

    select
        least(date '2020-01-01', coalesce(min(cast(placed_at as date)), date '2020-01-01')) as first_day,
        greatest(date '2030-12-31', coalesce(max(cast(placed_at as date)), current_date) + 366) as last_day
    from {{ ref('stg_orders') }}

),

days as (

    select cast(day as date) as date_day
    from bounds, range(bounds.first_day, bounds.last_day + 1, interval 1 day) as t(day)

),

final as (

    select
        cast(strftime(date_day, '%Y%m%d') as integer) as date_key,
        date_day,
        year(date_day) as year,
        quarter(date_day) as quarter,
        month(date_day) as month,
        monthname(date_day) as month_name,
        day(date_day) as day_of_month,
        isodow(date_day) as iso_day_of_week,
        dayname(date_day) as day_name,
        isodow(date_day) in (6, 7) as is_weekend
    from days

)

select * from final
