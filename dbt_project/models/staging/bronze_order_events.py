"""The shop's order domain events as landed in bronze ``_events/order`` (complete batches only).

Asks the bronze contract (``pipelines.dbtmodels.event_rows``) for the files, unions the event
versions by name into the columns the shop's outbox promises (``ORDER_EVENT_SCHEMA``), and is
empty, not an error, while no event has landed.
"""


def model(dbt, session):
    dbt.config(materialized="table")
    from pipelines.dbtmodels import event_rows
    from pipelines.shop.outbox import AGGREGATE, ORDER_EVENT_SCHEMA

    return event_rows(dbt.config.get("lake"), AGGREGATE, ORDER_EVENT_SCHEMA)
