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
from ecohub.errors import EcohubError, ErrorCode, InvalidInput, NotFound
from ecohub.settings import Settings

# soft_wrap: a long line (a curl command, a token) is printed whole when the output is a pipe or a file; on a terminal
# Rich still fits tables to its width
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES = {0: "success", 1: "a check failed (certify, audit verify, residency, spec diff) or an unexpected error",
              2: "usage error: unknown command or option, missing or ill-typed argument (Click)",
              3: "not found: the data dir, product, device… named does not exist",
              4: "unauthorized or forbidden", 5: "conflict with the current state (duplicate, illegal transition)",
              6: "unavailable: the hub, broker or database is down or slow (retry later)",
              7: "invalid input: a value was refused (fix it and retry)"}
EXIT_CODES_HELP = "Exit codes: " + "; ".join(f"{k} {v.split(':')[0]}" for k, v in EXIT_CODES.items()) + "."


def _complete_data_dir() -> Path:
    """The data dir a completion callback reads: --data-dir is not parsed yet, so $ECOHUB_DATA_DIR or ./.ecohub."""
    return Path(os.environ.get("ECOHUB_DATA_DIR") or ".ecohub")


def completer(kind: str) -> Callable[[str], list[str]]:
    """A shell-completion callback listing resource names (models, dids, partners, cells) of the data dir."""

    def complete(incomplete: str) -> list[str]:
        data_dir = _complete_data_dir()
        if not (data_dir / "global.db").is_file():
            return []
        try:
            from ecohub.cli.completion import names

            return [n for n in names(kind, Settings(data_dir=data_dir)) if n.startswith(incomplete)]
        except Exception:  # completion must never print a traceback into the user's shell
            return []

    return complete


DataDir = typer.Option(None, "--data-dir", help="data directory (default ./.ecohub or $ECOHUB_DATA_DIR); must "
                       "exist (`ecohub init`, `up`, `demo`, `api`, `ingest` and `broker config` create it)")
JsonOut = typer.Option(False, "--json", help="machine-readable output")


DatabaseOpt = typer.Option(None, "--database", help="PostgreSQL URL …/NAME: global plane NAME, cells NAME_{cell} "
                           "(created when missing); default SQLite files in the data dir")


def check_data_dir(path: Path, *, create: bool) -> None:
    """A data dir that is a file is refused; a missing one too, unless this command creates it (a typo'd
    --data-dir would otherwise silently start an empty store)."""
    if path.exists() and not path.is_dir():
        raise InvalidInput(f"the data dir {path} is a file, not a directory", code=ErrorCode.DATA_DIR_NOT_A_DIRECTORY)
    if not path.exists():
        if create:
            if any(p.exists() and not p.is_dir() for p in path.parents):
                raise InvalidInput(f"cannot create the data dir {path}: a parent is a file",
                                   code=ErrorCode.DATA_DIR_NOT_A_DIRECTORY)
            return
        raise NotFound(f"no data dir at {path} (a typo?); `ecohub init --data-dir {path}` creates one, and so do "
                       "`ecohub up` and `ecohub demo`", code=ErrorCode.DATA_DIR_MISSING)


def make_settings(data_dir: Path | None, *, database: str | None = None, create: bool = False,
                  **overrides: Any) -> Settings:
    """Settings with the data dir from the option, else ECOHUB_DATA_DIR, else ./.ecohub (which must exist unless
    `create`)."""
    if database is not None:
        from ecohub.store.setup import ensure_databases, split_database_url

        global_url, template = split_database_url(database)
        settings = make_settings(data_dir, create=create, **overrides)
        ensure_databases([global_url] + [template.format(cell=c) for c in settings.cells])
        overrides["database"] = {"url": global_url, "cell_url_template": template}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    elif "ECOHUB_DATA_DIR" not in os.environ:
        overrides.setdefault("data_dir", Path(".ecohub"))
    settings = Settings(**overrides)
    check_data_dir(settings.data_dir, create=create)
    if create and database is None:  # PostgreSQL named by ECOHUB_DATABASE__URL/__CELL_URL_TEMPLATE: create them too
        urls = [settings.global_db_url()] + [settings.cell_db_url(c) for c in settings.cells]
        postgres = [u for u in urls if u.startswith("postgresql")]
        if postgres:
            from ecohub.store.setup import ensure_databases

            ensure_databases(postgres)
    return settings


def open_services(data_dir: Path | None, *, database: str | None = None) -> Services:
    """Bootstrap the services on a data dir (works while a hub runs on it: SQLite WAL), or on PostgreSQL."""
    return bootstrap(make_settings(data_dir, database=database))


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


def emit_page(fetch: Callable[[int, int], list[Any]], *, limit: int, offset: int = 0, everything: bool = False,
              as_json: bool, columns: Iterable[str] | None = None, title: str | None = None,
              how: str = "--offset/--limit or --all", total: Callable[[], int] | None = None) -> None:
    """A list that stops at --limit says so (on stderr, so --json stays parseable); --all walks every page.

    `fetch(offset, n)` returns at most n rows from offset."""
    if limit < 1:
        raise InvalidInput("--limit must be at least 1", code=ErrorCode.INVALID_LIMIT)
    if everything:
        emit(fetch(offset, UNLIMITED), as_json=as_json, columns=columns, title=title)
        return
    rows = fetch(offset, limit + 1)
    more = len(rows) > limit
    emit(rows[:limit], as_json=as_json, columns=columns, title=title)
    if more:
        first, last = offset + 1, offset + limit
        of = f" of {total():,}" if total is not None else ""
        err_console.print(f"[yellow]showing {first:,} to {last:,}{of}; more exist: use {how}[/yellow]"
                          + (f" (next: --offset {last})" if "--offset" in how else ""))


UNLIMITED = 2**62  # what --all asks for (a LIMIT the databases accept)


def _cell(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return "" if v is None else str(v)
