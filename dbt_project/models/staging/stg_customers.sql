with source as (

    select * from {{ source('silver', 'customers') }}

),

renamed as (

    select
        customer_id,
        email,
        full_name,
        phone,
        date_of_birth,
        marketing_opt_in,
        created_at,
        updated_at,
        _source_ts as _changed_at
    from source

)

select * from renamed
