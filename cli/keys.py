"""`answerdesk keys ...`: API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.common import console, err, friendly, services

app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)


@app.command("create")
@friendly
def keys_create(
    ctx: typer.Context,
    role: Annotated[str, typer.Option(help="customer, agent or admin")],
    org: Annotated[str | None, typer.Option(help="Customer organisation (customers only)")] = None,
    tier: Annotated[str | None, typer.Option(help="Customer tier: free (default), paid, ...")] = None,
    name: Annotated[str, typer.Option(help="A label for the key")] = "",
) -> None:
    """Create a key. It is printed once and only its hash is stored."""
    try:
        key, record = services(ctx).keys.create(role, name, org, tier)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(key, markup=False, highlight=False)
    err.print(f"Key {record['id']} ({record['role']}{', ' + record['org'] if record['org'] else ''}"
              f"{', ' + record['tier'] if record['tier'] else ''}) created. Store it now: it is not shown again.")


@app.command("list")
@friendly
def keys_list(ctx: typer.Context) -> None:
    """Keys with their role, organisation, tier and state (never the key itself)."""
    table = Table()
    for col in ("id", "prefix", "name", "role", "org", "tier", "created", "revoked"):
        table.add_column(col)
    for r in services(ctx).keys.list():
        table.add_row(r["id"], r["prefix"] + "…", r["name"], r["role"], r["org"] or "", r["tier"] or "",
                      str(r["created_at"])[:19], str(r["revoked_at"] or "")[:19])
    console.print(table)


@app.command("revoke")
@friendly
def keys_revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (from `keys list`)")],
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    if not services(ctx).keys.revoke(key_id):
        err.print(f"[red]error:[/red] no active key {key_id}")
        raise typer.Exit(1)
    console.print(f"Revoked {key_id}.")
