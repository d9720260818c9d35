with source as (

    select * from {{ source('silver', 'categories') }}

),

renamed as (

    select
        category_id,
        name as category_name,
        parent_id,
        _source_ts as _changed_at
    from source

)

select * from renamed
