"""The demo shop: its schema, a deterministic OLTP workload, and the demo that ties it together.

The shop is only the demo's source system; nothing downstream depends on its tables
(bronze, silver and the lake are table-agnostic). The dbt star schema in ``dbt_project/``
is the one place that knows the shop's columns.
"""

from pipelines.shop.migrate import SHOP_TABLES, create_shop, shop_ddl

__all__ = ["SHOP_TABLES", "create_shop", "shop_ddl"]
