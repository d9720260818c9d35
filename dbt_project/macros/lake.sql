{# The lake root as the dbt process sees it (dbt runs with this project as its cwd). #}
{% macro lake_root() -%}
    {{ env_var('CHANGELAKE_LAKE', '../.changelake/lake') }}
{%- endmacro %}

{# A stable surrogate key: md5 over the parts, NULL-safe and separator-delimited. #}
{% macro surrogate_key(parts) -%}
    md5(concat_ws('|', {% for p in parts %}coalesce(cast({{ p }} as varchar), '<null>'){% if not loop.last %}, {% endif %}{% endfor %}))
{%- endmacro %}
