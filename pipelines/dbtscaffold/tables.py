"""What scaffold knows of a captured table: its columns and key (silver's metadata), and
which tables a dbt project already reads through hand-written sources.

Columns and primary key come from the table's current silver snapshot manifest (the same
``key`` and ``schema`` compaction wrote), so the models match what silver really holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from pipelines.bronze.layout import table_dir as bronze_dir
from pipelines.dbtenv import SOURCE_TABLE_META
from pipelines.naming import QualifiedName
from pipelines.silver import rules, snapshots

SCAFFOLD_FOLDER = "changelake_scaffold"


class ScaffoldError(ValueError):
    """A user error: no captured tables, not a dbt project, a project without the macros."""


@dataclass(frozen=True)
class TableSpec:
    """One captured table as silver holds it."""

    table: QualifiedName
    columns: tuple[str, ...]  # source columns, silver's order
    key: tuple[str, ...]  # () = no primary key
    has_source_ts: bool  # silver keeps _source_ts (the version's commit time)

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.key)


def describe(lake: Path, table: QualifiedName) -> TableSpec | None:
    """``table``'s columns and key from its current silver snapshot; None before compaction."""
    manifest = snapshots.current(lake, table)
    if manifest is None:
        return None
    names = [c["name"] for c in manifest.schema]
    return TableSpec(
        table=table,
        columns=tuple(n for n in names if n not in rules.KEEP_META),
        key=tuple(manifest.key),
        has_source_ts="_source_ts" in names,
    )


def silver_path(table: QualifiedName) -> str:
    """``silver/<schema_seg>/<table_seg>``: the table's silver folder relative to the lake."""
    return snapshots.table_dir(Path(), table).as_posix()


def bronze_path(table: QualifiedName) -> str:
    """``bronze/<schema_seg>/<table_seg>``: the table's bronze folder relative to the lake."""
    return bronze_dir(Path(), table).as_posix()


def model_paths(project: Path) -> list[Path]:
    """The project's model folders (``model-paths`` of dbt_project.yml)."""
    config = _load(project / "dbt_project.yml")
    if not isinstance(config, dict):
        raise ScaffoldError(f"{project / 'dbt_project.yml'} is not a dbt project file")
    return [project / p for p in config.get("model-paths") or ["models"]]


def macro_text(project: Path) -> str:
    """Every macro file of the project, concatenated (to check the macros scaffold calls)."""
    config = _load(project / "dbt_project.yml") or {}
    out = []
    for folder in config.get("macro-paths") or ["macros"]:
        out += [p.read_text(errors="replace") for p in sorted((project / folder).rglob("*.sql"))]
    return "\n".join(out)


def hand_written(project: Path, tables: tuple[QualifiedName, ...]) -> set[QualifiedName]:
    """Those of ``tables`` that a source outside the scaffold folder already reads: by meta
    ``changelake_table``, or an external_location reaching the table's silver/bronze folder."""
    found: set[QualifiedName] = set()
    for root in model_paths(project):
        for path in sorted(root.rglob("*.y*ml")):
            if SCAFFOLD_FOLDER in path.relative_to(root).parts[:1]:
                continue
            doc = _load(path)
            sources = doc.get("sources") if isinstance(doc, dict) else None
            for source in sources or []:
                for entry in source.get("tables") or []:
                    found |= _reads(source, entry, tables)
    return found


def _reads(source: dict, entry: dict, tables: tuple[QualifiedName, ...]) -> set[QualifiedName]:
    meta = {
        **(source.get("meta") or {}),
        **((source.get("config") or {}).get("meta") or {}),
        **(entry.get("meta") or {}),
        **((entry.get("config") or {}).get("meta") or {}),
    }
    if SOURCE_TABLE_META in meta:
        wanted = QualifiedName.parse(str(meta[SOURCE_TABLE_META]))
        return {wanted} & set(tables)
    location = str(meta.get("external_location") or "")
    name = str(entry.get("identifier") or entry.get("name") or "")
    location = location.replace("{name}", name).replace("{identifier}", name)
    return {
        t for t in tables if f"/{silver_path(t)}/" in location or f"/{bronze_path(t)}/" in location
    }


def _load(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return None
    except yaml.YAMLError as exc:
        raise ScaffoldError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
