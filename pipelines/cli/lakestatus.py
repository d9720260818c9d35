"""How ``changelake status`` shows the lake: a table per captured table, and the JSON document.

The figures come from ``pipelines.lakestatus``; this module only renders them. ``status --json``
prints ``{"version", "healthy", "stack", "lake"}``: ``stack`` is the stack view (components,
connector, tasks, slot, ``end_offsets`` as ``[{topic, partition, end_offset}]``, errors) and
``lake`` is ``LakeStatus.as_dict()`` (keys documented in ``pipelines/lakestatus.py``),
``service`` the running ``changelake run`` and ``iceberg`` the published copy
(``pipelines/iceberg/status.py``).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from rich.table import Table

from pipelines.lakestatus import LakeStatus, TableStatus
from pipelines.stack import StackStatus

JSON_VERSION = 1


def kafka_end_offsets(st: StackStatus) -> dict[tuple[str, int], int] | None:
    """The end offsets ``status`` read, or ``None`` when Kafka did not answer them."""
    failed = any(e.startswith("end offsets") for e in st.errors)
    return None if failed or not st.component("kafka").up else st.end_offsets


def document(
    st: StackStatus, lake: LakeStatus, service: dict | None = None, iceberg: dict | None = None
) -> dict:
    """The whole ``status --json`` document (``service``: the running ``changelake run``'s
    figures and stage health, ``pipelines.service.read_status``; null when none runs;
    ``iceberg``: how far the published Iceberg tables are behind, ``pipelines.iceberg.status``;
    null before the first publish)."""
    stack = dataclasses.asdict(st)
    stack["end_offsets"] = [
        {"topic": t, "partition": p, "end_offset": off}
        for (t, p), off in sorted(st.end_offsets.items())
    ]
    stack["healthy"] = st.healthy
    return {
        "version": JSON_VERSION,
        "healthy": st.healthy,
        "stack": stack,
        "lake": lake.as_dict(),
        "service": service,
        "iceberg": iceberg,
    }


def iceberg_line(doc: dict | None) -> str:
    """One line on the Iceberg copy of the lake."""
    if doc is None:
        return "iceberg: nothing published yet (`changelake publish`)"
    if doc.get("error"):
        return f"iceberg: the catalog did not answer ({doc['error']})"
    n = len(doc["tables"])
    if not doc["behind"]:
        return f"iceberg: {n} table(s) published, all up to date ({doc['warehouse']})"
    late = [
        r["table"] for r in doc["tables"] if r.get("offsets_behind") or r.get("snapshots_behind")
    ]
    return (
        f"iceberg: {doc['behind']} of {n} table(s) behind the lake ({', '.join(late[:5])}"
        f"{'...' if len(late) > 5 else ''}): `changelake publish`"
    )


def service_table(doc: dict | None) -> Table | str:
    """The running ``changelake run``: its figures and each stage's health."""
    if not doc:
        return "changelake run: not running for this lake"
    f = doc.get("figures", {})
    out = Table(title=f"changelake run (pid {doc.get('pid')})")
    out.add_column("what")
    out.add_column("value", justify="right")
    out.add_row("up for", _age(doc["updated"] - doc["started"]))
    out.add_row("events landed", f"{f.get('events', 0):,}")
    out.add_row("quarantined", f"{f.get('quarantined', 0):,}")
    out.add_row("consumer lag", "-" if f.get("lag") is None else f"{f['lag']:,}")
    out.add_row(
        "slot lag bytes", "-" if f.get("slot_lag_bytes") is None else f"{f['slot_lag_bytes']:,}"
    )
    p95 = f.get("queryable_p95_s")
    out.add_row("commit->queryable p95", "-" if p95 is None else f"{p95:.2f}s")
    out.add_row("snapshots written", f"{f.get('compactions', 0):,}")
    for name, stage in sorted(doc.get("stages", {}).items()):
        ok = "[green]ok[/]" if stage["healthy"] else f"[red]failing[/] ({stage['last_error']})"
        out.add_row(f"stage {name}", f"{ok}, {stage['failures']} failure(s)")
    return out


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(max(seconds, 0))
    for unit, size, sub, subsize in (
        ("d", 86400, "h", 3600),
        ("h", 3600, "m", 60),
        ("m", 60, "s", 1),
    ):
        if s >= size:
            return f"{s // size}{unit} {s % size // subsize}{sub}"
    return f"{seconds:.1f}s"


def _lag(t: TableStatus, kafka: bool) -> str:
    if not kafka:
        return "n/a"
    if t.lag is None:
        return "?"
    if not t.partitions:
        return "0 (no topic)"
    return f"{t.lag:,}"


def _when(iso: str | None) -> str:
    """A watermark time to the second, in UTC (the JSON keeps the full value)."""
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def lake_table(lake: LakeStatus) -> Table:
    """One row per table (and one for the transaction topic)."""
    title = f"lake {lake.root}"
    if not lake.kafka_available:
        title += " (Kafka unreachable: lag n/a)"
    out = Table(title=title, caption="lag: Kafka records not landed yet; fresh: now - watermark")
    out.add_column("table", no_wrap=True)
    for col in ("lag", "bronze files", "bronze rows", "silver rows", "watermark", "LSN"):
        out.add_column(col, justify="right")
    out.add_column("fresh", justify="right")
    out.add_column("quarantined", justify="right")
    for t in (*lake.tables, lake.transactions):
        s = t.silver
        name = t.table if t.captured else f"{t.table} [dim](not captured)[/]"
        if t.snapshotting:
            what = "snapshotting" if t.snapshotting["partial"] else "re-snapshotting"
            name += f" [yellow]({what} since {_when(t.snapshotting['started'])})[/]"
        out.add_row(
            name,
            _lag(t, lake.kafka_available),
            f"{t.bronze_files:,}",
            f"{t.bronze_rows:,}",
            f"{s.rows:,}" if s else "-",
            _when(s.watermark_ts) if s else "-",
            (s.watermark_lsn_text or "-") if s else "-",
            _age(s.freshness_seconds) if s else "-",
            f"[red]{t.quarantined:,}[/]" if t.quarantined else "0",
        )
    return out
