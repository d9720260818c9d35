"""How changelake runs dbt: one project folder, one executable, one environment.

Dagster (dagster-dbt), the demo and the tests all run ``dbt`` as a child process. They must hand
it the same warehouse and lake paths that ``dbt_project/profiles.yml`` and the sources read, and
find the ``dbt`` that is installed beside this Python even when the virtualenv is not activated
(CI and cron call ``.venv/bin/...`` directly, so ``dbt`` is not on PATH there).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from pipelines.config import REPO_ROOT, Settings

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"

# meta a dbt source carries to say which captured table (``"shop.orders"``) and which layer
# (``bronze``/``silver``) it reads; a model that reads bronze outside dbt's ref/source names
# its tables in meta ``changelake_bronze_tables``. Dagster and ``changelake dbt scaffold`` read them.
SOURCE_TABLE_META = "changelake_table"
SOURCE_LAYER_META = "changelake_layer"
BRONZE_TABLES_META = "changelake_bronze_tables"
_BIN = str(Path(sys.executable).parent)
# the profile output whose sources read the lake's Iceberg tables, and the alias it attaches
# the DuckDB file over them as (dbt_project/profiles.yml)
ICEBERG_TARGET = "iceberg"
ICEBERG_ALIAS = "lake_iceberg"


def on_target(target: str, there: str, otherwise: str) -> str:
    """Jinja text that renders ``there`` when dbt runs with ``--target target``, else
    ``otherwise`` (a source's external_location on the Parquet lake or on Iceberg; dbt-duckdb
    quotes a location without a parenthesis as a file path, so a table is ``(select ...)``)."""
    return f"{{% if target.name == '{target}' %}}{there}{{% else %}}{otherwise}{{% endif %}}"


def dbt_executable() -> str:
    """The ``dbt`` beside this interpreter, else the one on PATH; clear error if neither."""
    exe = shutil.which("dbt", path=_BIN) or shutil.which("dbt")
    if exe is None:
        raise RuntimeError("dbt is not installed in this environment (pip install -e '.[dev]')")
    return exe


def dbt_env(settings: Settings) -> dict[str, str]:
    """Variables dbt's profiles.yml and sources read, and a PATH on which ``dbt`` is found.
    With ``CHANGELAKE_LAKE_FORMAT=iceberg`` also ``DBT_TARGET`` (dbt's own variable for
    ``--target``, which still wins): the lake is the Iceberg tables, so is dbt's source."""
    path = os.environ.get("PATH", "")
    if _BIN not in path.split(os.pathsep):
        path = _BIN + os.pathsep + path
    env = {
        "CHANGELAKE_WAREHOUSE": str(settings.warehouse_path),
        "CHANGELAKE_LAKE": str(settings.lake_root),
        "PATH": path,
    }
    if settings.lake_format == "iceberg":
        env["DBT_TARGET"] = ICEBERG_TARGET
    return env
