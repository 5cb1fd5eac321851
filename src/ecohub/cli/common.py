"""Shared CLI plumbing: settings from --data-dir, JSON or Rich output, errors → exit codes."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ecohub.bootstrap import Services, bootstrap
from ecohub.errors import EcohubError
from ecohub.settings import Settings

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

DataDir = typer.Option(None, "--data-dir", help="data directory (default ./.ecohub or $ECOHUB_DATA_DIR)")
JsonOut = typer.Option(False, "--json", help="machine-readable output")


DatabaseOpt = typer.Option(None, "--database", help="PostgreSQL URL …/NAME: global plane NAME, cells NAME_{cell} "
                           "(created when missing); default SQLite files in the data dir")


def make_settings(data_dir: Path | None, *, database: str | None = None, **overrides: Any) -> Settings:
    """Settings with the data dir from the option, else ECOHUB_DATA_DIR, else ./.ecohub."""
    if database is not None:
        from ecohub.store.setup import ensure_databases, split_database_url

        global_url, template = split_database_url(database)
        settings = make_settings(data_dir, **overrides)
        ensure_databases([global_url] + [template.format(cell=c) for c in settings.cells])
        overrides["database"] = {"url": global_url, "cell_url_template": template}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    elif "ECOHUB_DATA_DIR" not in os.environ:
        overrides.setdefault("data_dir", Path(".ecohub"))
    return Settings(**overrides)


def open_services(data_dir: Path | None) -> Services:
    """Bootstrap the services on a data dir (works while a hub runs on it: SQLite WAL)."""
    return bootstrap(make_settings(data_dir))


def handle_errors(fn: F) -> F:
    """Render EcohubError as a message (or JSON with --json) and exit with its code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EcohubError as err:
            if kwargs.get("as_json"):
                print(json.dumps(err.to_dict()), file=sys.stdout)
            err_console.print(f"[red]error[/red] ({err.code}): {err.message}")
            problems = err.details.get("problems")
            if problems:
                for p in problems:
                    err_console.print(f"  • {p['path']}: {p['message']}")
            raise typer.Exit(err.exit_code) from err

    return wrapper  # type: ignore[return-value]


def emit(data: Any, *, as_json: bool, columns: Iterable[str] | None = None, title: str | None = None) -> None:
    """Print JSON, or a table of rows (list of dicts), or a dict as key/value lines."""
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    if isinstance(data, list):
        cols = list(columns or (data[0].keys() if data else []))
        table = Table(title=title)
        for c in cols:
            table.add_column(c)
        for row in data:
            table.add_row(*[_cell(row.get(c)) for c in cols])
        console.print(table)
        if not data:
            console.print("[dim](none)[/dim]")
        return
    if isinstance(data, dict):
        for k, v in data.items():
            console.print(f"[bold]{k}[/bold]: {_cell(v)}")
        return
    console.print(data)


def _cell(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return "" if v is None else str(v)
