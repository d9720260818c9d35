{# Plain schema names (staging, marts...) instead of dbt's "<target>_<custom>" default, so
   analysts query marts.fct_orders in the warehouse without knowing the dbt target. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name | trim if custom_schema_name else target.schema }}
{%- endmacro %}
