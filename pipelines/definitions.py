"""The module Dagster loads as the code location ``changelake``.

``changelake ui`` hands ``dagster dev`` a workspace naming it (``pipelines.instance``); plain
``dagster dev`` in the repository root finds the same through pyproject's ``[tool.dagster]``.

Built lazily by ``@dg.definitions`` from the ``pipelines.defs`` package, using the settings
in the environment (``CHANGELAKE_*``). Loading touches no service, so the UI opens with the
stack down.
"""

from __future__ import annotations

import dagster as dg

from pipelines.defs import build_definitions


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
