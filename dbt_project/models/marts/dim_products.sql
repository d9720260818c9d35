{# Product dimension, SCD type 2 (price history); the category is today's (not historised). #}
with versions as (

    select * from {{ ref('int_products_versions') }}

),

categories as (

    select * from {{ ref('stg_categories') }}

),

final as (

    select
        {{ surrogate_key(['versions.product_id', 'versions.valid_from']) }} as product_sk,
        versions.product_id,
        versions.sku,
        versions.name as product_name,
        versions.category_id,
        categories.category_name,
        parents.category_name as parent_category_name,
        versions.price,
        versions.cost,
        versions.description,
        length(versions.description) as description_length,
        versions.attributes,
        versions.active,
        versions.valid_from,
        versions.valid_to,
        versions.is_current
    from versions
    left join categories on categories.category_id = versions.category_id
    left join categories as parents on parents.category_id = categories.parent_id

)

select * from final
