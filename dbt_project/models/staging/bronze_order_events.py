"""The shop's order domain events as landed in bronze ``_events/order`` (complete batches only).

Asks the bronze contract (``pipelines.dbtmodels.event_rows``) for the files, unions the event
versions by name into the columns the shop's outbox promises (``ORDER_EVENT_SCHEMA``), and is
empty, not an error, while no event has landed. On the ``iceberg`` target it reads the Iceberg
bronze table of the events instead (``iceberg_event_rows``).
"""


def model(dbt, session):
    dbt.config(materialized="table")
    from pipelines.dbtenv import ICEBERG_TARGET
    from pipelines.dbtmodels import event_rows, iceberg_event_rows
    from pipelines.shop.outbox import AGGREGATE, ORDER_EVENT_SCHEMA

    if dbt.config.get("target_name") == ICEBERG_TARGET:
        return iceberg_event_rows(session, AGGREGATE, ORDER_EVENT_SCHEMA)
    return event_rows(dbt.config.get("lake"), AGGREGATE, ORDER_EVENT_SCHEMA)
