with warehouses as (

    select * from {{ ref('stg_warehouses') }}

)

select warehouse_id, warehouse_code, warehouse_name, city from warehouses
