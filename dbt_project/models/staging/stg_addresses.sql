with source as (

    select * from {{ source('silver', 'addresses') }}

),

renamed as (

    select
        address_id,
        customer_id,
        kind,
        line1,
        city,
        postal_code,
        country,
        is_default,
        created_at,
        updated_at,
        _source_ts as _changed_at
    from source

)

select * from renamed
