{# Generic tests for SCD2 relations with valid_from (inclusive) / valid_to (exclusive, NULL = open). #}

{% test scd2_one_current_per_key(model, key_columns) %}
{# Fails for each key with more than one open version. #}
select {{ key_columns | join(', ') }}, count(*) as current_versions
from {{ model }}
where valid_to is null
group by {{ key_columns | join(', ') }}
having count(*) > 1
{% endtest %}

{% test scd2_no_overlap(model, key_columns) %}
{# Fails for each version that starts before the previous version of its key ended, or ends before it starts. #}
with ordered as (
    select
        *,
        lag(valid_to) over (
            partition by {{ key_columns | join(', ') }} order by valid_from, valid_to nulls last
        ) as previous_valid_to,
        lag(valid_from) over (
            partition by {{ key_columns | join(', ') }} order by valid_from, valid_to nulls last
        ) as previous_valid_from
    from {{ model }}
)
select *
from ordered
where (previous_valid_from is not null and (previous_valid_to is null or previous_valid_to > valid_from))
   or valid_to < valid_from
{% endtest %}

{% test unique_combination(model, columns) %}
{# The columns together are a key (dbt_utils.unique_combination_of_columns, which we cannot install). #}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
