with source as (

    select * from {{ source('silver', 'warehouses') }}

),

renamed as (

    select
        warehouse_id,
        code as warehouse_code,
        name as warehouse_name,
        city,
        _source_ts as _changed_at
    from source

)

select * from renamed
