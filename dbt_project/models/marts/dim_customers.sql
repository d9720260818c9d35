{# Customer dimension, SCD type 2: one row per version, valid on [valid_from, valid_to). #}
with versions as (

    select * from {{ ref('int_customers_versions') }}

),

final as (

    select
        {{ surrogate_key(['customer_id', 'valid_from']) }} as customer_sk,
        customer_id,
        email,
        split_part(email, '@', 2) as email_domain,
        full_name,
        phone,
        date_of_birth,
        marketing_opt_in,
        created_at,
        valid_from,
        valid_to,
        is_current
    from versions

)

select * from final
