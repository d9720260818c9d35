{# Every change event of shop.stock_levels, from complete bronze batches only. #}
with events as (

    select * from {{ source('bronze', 'stock_levels') }}

),

complete_files as (

    select file_name from {{ ref('bronze_complete_files') }} where table_name = 'stock_levels'

),

landed as (

    select events.*
    from events
    where parse_filename(events.filename) in (select file_name from complete_files)

),

renamed as (

    select
        warehouse_id,
        product_id,
        quantity,
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
