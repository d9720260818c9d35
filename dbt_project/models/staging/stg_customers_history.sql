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
        _op,
        _source_ts,
        _commit_lsn,
        _lsn,
        _tx_id,
        _offset,
        coalesce(_unavailable, []::varchar[]) as _unavailable
    from landed

)

select * from renamed
