{# SCD2 versions of shop.customers from its change history (see macros/scd2_from_cdc.sql). #}
with {{ scd2_from_cdc(ref('stg_customers_history'), ['customer_id'], ['email', 'full_name', 'phone', 'date_of_birth', 'marketing_opt_in', 'created_at', 'updated_at']) }}

select * from versions
