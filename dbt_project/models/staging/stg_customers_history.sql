{# Every change event of shop.customers, from complete bronze batches only. #}
with landed as (

    {{ complete_bronze_events('customers') }}

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
        {{ cdc_event_columns() }}
    from landed

)

select * from renamed
