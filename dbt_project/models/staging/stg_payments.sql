with source as (

    select * from {{ source('silver', 'payments') }}

),

renamed as (

    select
        payment_id,
        order_id,
        kind,
        method,
        amount,
        created_at,
        _source_ts as _changed_at
    from source

)

select * from renamed
