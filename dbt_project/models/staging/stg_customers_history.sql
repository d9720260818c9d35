{# Every change event of shop.customers, from complete bronze batches only. #}
with events as (

    select * from {{ source('bronze', 'customers') }}

),

complete_files as (

    select file_name from {{ ref('bronze_complete_files') }} where table_name = 'customers'

),

landed as (

    select events.*
    from events
    where parse_filename(events.filename) in (select file_name from complete_files)

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
