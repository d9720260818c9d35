"""Marts: the dbt project as Dagster assets, its sources mapped onto the silver/bronze assets.

The manifest is prepared at load time (``DbtProject.prepare_if_dev`` under ``dagster dev``,
or ``dbt parse`` when ``target/manifest.json`` is missing, e.g. a clean checkout), so the
graph from source table to mart is one piece. dbt tests become asset checks (dagster-dbt).
"""

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from pipelines.config import Settings
from pipelines.dbtenv import (
    BRONZE_TABLES_META,
    DBT_PROJECT_DIR,
    SOURCE_LAYER_META,
    SOURCE_TABLE_META,
    dbt_env,
)
from pipelines.defs.keys import MARTS_GROUP, WAREHOUSE_POOL, bronze_key, silver_key
from pipelines.defs.resources import ChangelakeResource
from pipelines.naming import QualifiedName

# Sources and models say what they read of the lake through meta (pipelines.dbtenv): a source
# its table and layer, a model reading bronze outside dbt's ref/source (e.g. a Python model
# listing complete bronze files) its tables (or, for a model named ``bronze*``, config
# ``tables``), so Dagster knows it must rerun when those tables land.


class ChangelakeDbtTranslator(DagsterDbtTranslator):
    """Sources -> the silver/bronze asset of their table; models -> ``[group, name]``, eager.

    A model's group is its layer, set per folder in ``dbt_project.yml`` (``staging``,
    ``intermediate``, ``marts``); a model with none joins ``marts``."""

    def __init__(self, tables: Sequence[QualifiedName]) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
        self._tables = tuple(tables)

    def source_table(self, props: Mapping[str, Any]) -> tuple[str, QualifiedName] | None:
        """(layer, table) a dbt source reads, or None when it is not a captured table."""
        meta = {**(props.get("source_meta") or {}), **(props.get("meta") or {})}
        layer = meta.get(SOURCE_LAYER_META)
        if layer not in ("bronze", "silver"):
            layer = (
                "bronze" if "bronze" in f"{props.get('source_name')} {meta}".lower() else "silver"
            )
        if SOURCE_TABLE_META in meta:
            return layer, QualifiedName.parse(str(meta[SOURCE_TABLE_META]))
        found = self.match(props.get("identifier") or props.get("name"), props.get("schema"))
        return (layer, found) if found else None

    def match(self, name: object, schema: object = None) -> QualifiedName | None:
        """The captured table called ``name`` (``schema.table`` or a unique bare table name)."""
        text = str(name or "")
        if "." in text:
            wanted = QualifiedName.parse(text)
            return wanted if wanted in self._tables else None
        matches = [t for t in self._tables if t.table == text]
        if len(matches) > 1:
            matches = [t for t in matches if t.schema == schema] or matches
        return matches[0] if len(matches) == 1 else None

    def bronze_reads(self, props: Mapping[str, Any]) -> list[QualifiedName]:
        """Captured tables a model reads from bronze without a dbt source (see module doc)."""
        config = props.get("config") or {}
        meta = {**(config.get("meta") or {}), **(props.get("meta") or {})}
        names = meta.get(BRONZE_TABLES_META)
        if names is None and str(props.get("name", "")).startswith("bronze"):
            names = config.get("tables")
        found = [self.match(n) for n in names or []]
        return [t for t in found if t is not None]

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            found = self.source_table(props)
            if found is not None:
                layer, table = found
                return spec.replace_attributes(
                    key=bronze_key(table) if layer == "bronze" else silver_key(table)
                )
            return spec
        group = spec.group_name or MARTS_GROUP
        return spec.replace_attributes(
            key=dg.AssetKey([group, *spec.key.path[-1:]]),
            group_name=group,
            automation_condition=dg.AutomationCondition.eager(),
        ).merge_attributes(kinds={"duckdb"}, deps=[bronze_key(t) for t in self.bronze_reads(props)])


def load_project(settings: Settings) -> DbtProject | None:
    """The dbt project with a manifest ready, or None when there is no dbt project (yet)."""
    if not (DBT_PROJECT_DIR / "dbt_project.yml").exists():
        return None
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    with _env(dbt_env(settings)):  # for the dbt child process only; restored after
        project.prepare_if_dev()
        if _manifest_stale(project):
            project.preparer.prepare(project)  # dbt parse: no network, no warehouse needed
    return project


def _manifest_stale(project: DbtProject) -> bool:
    """No manifest yet, or a model, macro or project file changed after it was parsed (a
    pulled checkout must not show yesterday's graph)."""
    manifest = project.manifest_path
    if not manifest.exists():
        return True
    parsed = manifest.stat().st_mtime
    sources = [DBT_PROJECT_DIR / "dbt_project.yml"]
    for folder in ("models", "macros"):
        sources.extend((DBT_PROJECT_DIR / folder).rglob("*"))
    return any(p.is_file() and p.stat().st_mtime > parsed for p in sources)


@contextmanager
def _env(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def build_dbt_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    """The dbt models (and their tests as checks), or nothing if there is no dbt project."""
    project = load_project(settings)
    if project is None:
        return []

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=ChangelakeDbtTranslator(settings.captured),
        name="dbt_marts",
        pool=WAREHOUSE_POOL,
    )
    def dbt_marts(
        context: AssetExecutionContext, dbt: DbtCliResource, changelake: ChangelakeResource
    ) -> Iterator[object]:
        with _env(dbt_env(changelake.settings())):  # dbt runs as a child process
            yield from dbt.cli(["build"], context=context).stream()

    return [dbt_marts]
