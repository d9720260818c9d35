{# SCD2 versions of shop.stock_levels from its change history (see macros/scd2_from_cdc.sql). #}
with {{ scd2_from_cdc(ref('stg_stock_levels_history'), ['warehouse_id', 'product_id'], ['quantity', 'updated_at']) }}

select * from versions
