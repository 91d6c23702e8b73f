"""``pingan-hub sensitive add|list|cancel``: sensitive periods from the centre's shell (the console's admin screen
does the same). It writes to the hub's database; the running hub's job (hub/sensitive/scheduler.py) starts,
pushes and reverts from there, so this works whether the hub is running or not. Times without an offset are
the district's (PINGAN_TIMEZONE)."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from edge.errors import PinganError

sensitive_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                            help="Sensitive periods (敏感时期): a raised alert level for a time window.")


def _periods():  # noqa: ANN202 - hub.sensitive.periods.Periods, imported lazily
    from edge.shared.securefs import private_dir
    from hub.cli.main import _settings
    from hub.sensitive.periods import Periods
    from hub.store.engine import init_db, make_engine

    settings = _settings(mqtt_enabled=False)
    private_dir(settings.data_dir)
    engine = make_engine(settings.db_url)
    init_db(engine)
    return Periods(engine, settings.timezone, settings.escalate_after_s)


def _line(p: dict, periods) -> str:  # type: ignore[type-arg]  # noqa: ANN001
    """One period on one line, its times in the district's zone."""
    from datetime import datetime

    scope = "district" if p["scope"] == "district" else ",".join(p["grids"])
    when = " → ".join(periods._local(datetime.fromisoformat(p[k])) for k in ("starts_at", "ends_at"))
    return f"{p['id']}  {p['state']:<9}  {when}  {scope:<20} escalate {p['escalate_after_s']:g}s  {p['reason']}"


@sensitive_app.command("add")
def add(end: Annotated[str, typer.Option(help="When it ends, e.g. 2026-12-24T18:00 (district time)")],
        reason: Annotated[str, typer.Option(help="Why (shown on the console's banner)")],
        start: Annotated[str | None, typer.Option(help="When it starts (default now)")] = None,
        grid: Annotated[list[str] | None, typer.Option(help="A grid in scope (repeat); none = the district")] = None,
        escalate_after: Annotated[float, typer.Option(help="Escalate unacknowledged alarms after (s)")] = 30,
        loiter: Annotated[float | None, typer.Option(help="Profile: loitering after this many seconds")] = None,
        night: Annotated[list[str] | None, typer.Option(help="Profile: zone window HH:MM-HH:MM (repeat)")] = None,
        by: Annotated[str | None, typer.Option(help="Who raises it (audit log); default your login")] = None) -> None:
    """Raise the alert level for the district or some grids from START to END."""
    from pydantic import ValidationError

    from hub.cli.main import _fail
    from hub.sensitive.profile import DetectionProfile

    try:
        profile = DetectionProfile(loiter_s=loiter, night_schedule=night)
    except ValidationError as exc:
        _fail("; ".join(e["msg"] for e in exc.errors()))
        return
    periods = _periods()
    try:
        made = periods.create(start=start, end=end, grids=grid or None, reason=reason, escalate_after_s=escalate_after,
                              profile=profile, actor=f"cli:{by or getpass.getuser()}"[:64])
    except PinganError as exc:
        _fail(str(exc))
    finally:
        periods.engine.dispose()
    typer.echo(_line(made, periods))


@sensitive_app.command("list")
def list_() -> None:
    """Every period, latest start first."""
    periods = _periods()
    try:
        for p in periods.listed(500):
            typer.echo(_line(p, periods))
    finally:
        periods.engine.dispose()


@sensitive_app.command("cancel")
def cancel(period: Annotated[str, typer.Argument(help="The period's id (see list)")],
           by: Annotated[str | None, typer.Option(help="Who cancels it (audit log); default: your login")] = None,
           ) -> None:
    """End a period now; the hub pushes the poles' previous configs back on its next round."""
    from hub.cli.main import _fail

    periods = _periods()
    try:
        typer.echo(_line(periods.cancel(period, f"cli:{by or getpass.getuser()}"[:64]), periods))
    except PinganError as exc:
        _fail(str(exc))
    finally:
        periods.engine.dispose()
