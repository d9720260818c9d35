{# SCD2 versions of shop.products from its change history (see macros/scd2_from_cdc.sql). #}
with {{ scd2_from_cdc(ref('stg_products_history'), ['product_id'], ['sku', 'name', 'category_id', 'price', 'cost', 'description', 'attributes', 'active', 'created_at', 'updated_at']) }}

select * from versions
