{#
  Stock on hand per (warehouse, product) as validity intervals in commit time. The quantity at
  any instant T is the row with valid_from <= T < valid_to; its value at list price is that
  quantity times the dim_products version valid at T (see fct_inventory_hourly and the demo).
#}
with versions as (

    select * from {{ ref('int_stock_levels_versions') }}

)

select
    {{ surrogate_key(['warehouse_id', 'product_id', 'valid_from']) }} as stock_version_sk,
    warehouse_id,
    product_id,
    quantity,
    valid_from,
    valid_to,
    is_current
from versions
