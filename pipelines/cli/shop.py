"""``changelake shop create``, ``changelake workload`` and ``changelake demo``."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipelines.cli.services import require
from pipelines.config import get_settings

console = Console()
# What the demo suggests running in the DuckDB CLI on the warehouse it built.
_PEEK_SQL = "select * from marts.fct_inventory_hourly order by hour_ts desc limit 10"
shop_app = typer.Typer(help="The demo shop (source system of the demo).", no_args_is_help=True)


@shop_app.command("create")
def create_command() -> None:
    """Create the shop schema in PostgreSQL (idempotent), as the application role."""
    from pipelines.shop.migrate import create_shop

    settings = get_settings()
    require(settings, "postgres")
    tables = create_shop(settings)
    console.print(f"shop ready: {', '.join(str(t) for t in tables)}")


def workload_command(
    rate: Annotated[float, typer.Option("--rate", help="target transactions per second")] = 20,
    duration: Annotated[float, typer.Option("--duration", help="seconds to run")] = 30,
    connections: Annotated[int, typer.Option("--connections", help="concurrent connections")] = 2,
    seed: Annotated[int, typer.Option("--seed", help="random seed")] = 42,
    black_friday: Annotated[
        bool, typer.Option("--black-friday", help="a burst of orders in the middle of the run")
    ] = False,
) -> None:
    """Run the seeded shop workload (real multi-statement transactions) against PostgreSQL."""
    from pipelines.shop.workload import run_workload

    settings = get_settings()
    require(settings, "postgres")
    with console.status(f"workload: {rate:g} tx/s for {duration:g}s on {connections} connections"):
        res = run_workload(
            settings,
            rate=rate,
            duration=duration,
            connections=connections,
            seed=seed,
            black_friday=black_friday,
        )
    table = Table(title=f"{res.committed:,} transactions, {res.achieved_tps:.1f} tx/s achieved")
    table.add_column("action")
    table.add_column("committed", justify="right")
    for name, n in res.by_action.most_common():
        table.add_row(name, f"{n:,}")
    console.print(table)
    console.print(f"no-ops {res.noops}, retried {res.retried}, failed {res.failed}")
    if res.black_friday:
        bf = res.black_friday
        console.print(
            f"Black Friday burst: {bf.start.isoformat()} .. {bf.end.isoformat()}; "
            f"ask about [bold]{bf.ask_at.isoformat()}[/]"
        )
    if res.failed:
        raise typer.Exit(1)


def demo_command(
    duration: Annotated[float, typer.Option("--duration", help="workload seconds")] = 60,
    rate: Annotated[float, typer.Option("--rate", help="workload tx/s")] = 40,
    engine: Annotated[
        str, typer.Option("--engine", help="auto (Dagster if present), dagster or plain")
    ] = "auto",
) -> None:
    """The whole pipeline on the demo shop, then answers from the star schema."""
    from pipelines.shop.demo import run_demo

    settings = get_settings()
    with console.status("demo") as status:

        def say(msg: str) -> None:
            console.log(msg)
            status.update(msg)

        out = run_demo(settings, rate=rate, duration=duration, engine=engine, say=say)  # type: ignore[arg-type]
    rev = Table(title="Revenue by day (paid + shipped orders)")
    for col in ("day", "orders", "revenue"):
        rev.add_column(col, justify="right" if col != "day" else "left")
    for day, n, amount in out["revenue_by_day"]:
        rev.add_row(str(day), f"{n:,}", f"{amount:,.2f}")
    top = Table(title="Top products by revenue")
    for col in ("product", "category", "units", "revenue"):
        top.add_column(col)
    for name, cat, units, amount in out["top_products"]:
        top.add_row(name, cat or "", f"{units:,}", f"{amount:,.2f}")
    console.print(rev, top)
    mart, silver = out["inventory_mart"], out["inventory_silver"]
    console.print(f"Inventory at the Black-Friday instant [bold]{mart.instant.isoformat()}[/]:")
    console.print(
        f"  from the mart (fct_inventory_history x dim_products): {mart.units:,} units, "
        f"{mart.value:,.2f}"
    )
    console.print(
        f"  from silver time travel (as_of):                     {silver.units:,} units, "
        f"{silver.value:,.2f}  [green]agree[/]"
    )
    console.print(f"demo finished in {out['seconds']:.0f}s (engine: {out['engine']}).")
    console.print("Open the Dagster UI: [bold]make ui[/]")
    from pipelines.lakeformat import catalog_file

    bf = out["workload"].black_friday
    warehouse = shlex.quote(str(settings.warehouse_path))
    hints = [
        f"changelake as-of shop.stock_levels {shlex.quote(bf.ask_at.isoformat())} --format csv",
        "changelake history shop.products 1"
        if settings.lake_format == "parquet"
        else "changelake status",
        "changelake dbt build",
        f"duckdb -readonly {warehouse} {shlex.quote(_PEEK_SQL)}",
    ]
    console.print("Try it on this run (with .venv/bin on PATH, or prefix .venv/bin/):")
    for hint in hints:
        console.print(f"  {hint}", markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"Time travel in SQL: the catalog {catalog_file(settings)} has "
        "as_of_<table>(ts) and history_<table>(key) macros"
        + (
            " (silver schema; open it with the iceberg extension)"
            if settings.lake_format == "iceberg"
            else ""
        )
    )


def register(app: typer.Typer) -> None:
    app.add_typer(shop_app, name="shop")
    app.command("workload")(workload_command)
    app.command("demo")(demo_command)
