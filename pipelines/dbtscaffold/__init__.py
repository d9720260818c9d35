"""``changelake dbt scaffold``: dbt sources, staging and SCD2 models for the captured tables.

``scaffold(settings, project_dir, force=False)`` writes, for every captured table that no
hand-written source of the project reads yet, into ``<models>/changelake_scaffold/<schema>/``
(see ``render``); columns and keys come from silver (``tables``), files are written by
``write`` (idempotent, edited files kept). The CLI (pipelines/cli/dbt.py) only prints.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.config import Settings
from pipelines.dbtscaffold import render
from pipelines.dbtscaffold.tables import (
    SCAFFOLD_FOLDER,
    ScaffoldError,
    TableSpec,
    describe,
    hand_written,
    macro_text,
    model_paths,
)
from pipelines.dbtscaffold.write import FileResult, write_file
from pipelines.naming import QualifiedName

__all__ = ["SCAFFOLD_FOLDER", "Report", "ScaffoldError", "scaffold"]

# what the generated models call, and where it is defined in changelake's own project
NEEDED_MACROS = (
    "macro scd2_from_cdc",
    "macro complete_bronze_events",
    "macro cdc_event_columns",
    "macro ident",
    "macro sql_literal",
    "test scd2_one_current_per_key",
    "test scd2_no_overlap",
    "test unique_combination",
)


@dataclass
class Report:
    """What scaffold did: files and their fate, and tables it left out (with why)."""

    files: list[FileResult] = field(default_factory=list)
    tables: list[TableSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hand_written: list[QualifiedName] = field(default_factory=list)  # left alone


def scaffold(settings: Settings, project_dir: Path, *, force: bool = False) -> Report:
    """Write the scaffold into the dbt project at ``project_dir``; see the module doc."""
    project = Path(project_dir).resolve()
    if not (project / "dbt_project.yml").is_file():
        raise ScaffoldError(f"{project} is not a dbt project (no dbt_project.yml)")
    captured = settings.captured
    if not captured:
        raise ScaffoldError("no captured tables (CHANGELAKE_TABLES is empty)")
    _check_macros(project)
    report = Report()
    covered = hand_written(project, captured)
    by_schema: dict[str, list[TableSpec]] = defaultdict(list)
    seen: dict[str, QualifiedName] = {}  # DuckDB names are case-insensitive: one per spelling
    for table in captured:
        if table in covered:
            report.hand_written.append(table)  # e.g. the demo shop's tables
            continue
        spec = _spec_or_reason(settings, table)
        if isinstance(spec, str):
            report.notes.append(f"{table}: skipped, {spec}")
            continue
        for name in (render.schema_part(table), render.names(table)["staging"]):
            other = seen.setdefault(name.lower(), table)
            if other.schema != table.schema or (name.startswith("stg_") and other != table):
                report.notes.append(f"{table}: skipped, its dbt names clash with {other}'s")
                break
        else:
            by_schema[render.schema_part(table)].append(spec)
            report.tables.append(spec)
            if not spec.key:
                report.notes.append(
                    f"{table}: no primary key, staging model only (SCD2 versions need a key)"
                )
    root = model_paths(project)[0] / SCAFFOLD_FOLDER
    for part, specs in sorted(by_schema.items()):
        for name, body in render.schema_files(specs).items():
            report.files.append(write_file(root / part / name, body, force=force))
    return report


def _check_macros(project: Path) -> None:
    text = macro_text(project)
    missing = [m.split()[1] for m in NEEDED_MACROS if m not in text]
    if missing:
        raise ScaffoldError(
            f"{project} lacks changelake's dbt macros ({', '.join(missing)}); "
            "copy dbt_project/macros/ into it"
        )


def _spec_or_reason(settings: Settings, table: QualifiedName) -> TableSpec | str:
    """The table as silver holds it, or why scaffold cannot write models for it."""
    jinja = "which dbt's Jinja would read as template code"
    if any(c in f"{table.schema}{table.table}" for c in "{}"):
        return f"its name has '{{' or '}}', {jinja}"
    spec = describe(settings.lake_root, table)
    if spec is None:
        return "no silver snapshot yet (land and compact first: `changelake compact`)"
    for column in spec.columns:
        if any(c in column for c in "{}"):
            return f"column {column!r} has '{{' or '}}', {jinja}"
    return spec
