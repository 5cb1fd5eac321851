"""`ecohub privacy …`, `ecohub residency report` and `ecohub audit …`: thin commands over the privacy context."""

from __future__ import annotations

from pathlib import Path

import typer

from ecohub.cli.common import DataDir, JsonOut, completer, console, emit, emit_page, handle_errors, open_services
from ecohub.privacy import datamap
from ecohub.schema import metadata_for

privacy_app = typer.Typer(help="privacy: the data map, records of processing, data-subject requests",
                          no_args_is_help=True)
residency_app = typer.Typer(help="data residency: prove personal data stays in its region cell", no_args_is_help=True)
CellOpt = typer.Option(None, "--cell", help="region cell (default: the hub's default cell)",
                       autocompletion=completer("cell"))
audit_app = typer.Typer(help="the hash-chained audit log of each cell", no_args_is_help=True)


@privacy_app.command("datamap")
@handle_errors
def show_datamap(as_json: bool = JsonOut) -> None:
    """Every personal column (category, purpose, legal basis, retention) and the Art. 30 record built from it."""
    metadata_for("cell")  # the data map reads every context's tables
    doc = datamap.render()
    if as_json:
        emit(doc, as_json=True)
    else:
        rows = [{"column": f"{t['plane']}.{t['table']}.{c}", **d} for t in doc["tables"]
                for c, d in t["personal"].items()]
        emit(rows, as_json=False, title="personal data")
        emit([{"purpose": a["purpose"], "subjects": a["data_subjects"], "legal basis": "; ".join(a["legal_basis"]),
               "retention": "; ".join(a["retention"]), "recipients": a["recipients"]}
              for a in doc["record_of_processing"]], as_json=False, title="record of processing activities (Art. 30)")
        for p in doc["problems"]:
            console.print(f"[red]undeclared[/red] {p}")
    if doc["problems"]:
        raise typer.Exit(1)


@privacy_app.command("requests")
@handle_errors
def requests(cell: str | None = CellOpt, status: str | None = typer.Option(None, "--status"),
             data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Data-subject requests of a cell, nearest deadline first."""
    svc = open_services(data_dir)
    try:
        rows = svc.privacy.dsr.list(svc.dbs.check_cell(cell or svc.settings.default_cell), status=status)
    finally:
        svc.close()
    emit(rows if as_json else [{k: r[k] for k in ("request_id", "kind", "status", "subject", "due")} for r in rows],
         as_json=as_json)


@privacy_app.command("extend")
@handle_errors
def extend(request_id: str, cell: str | None = CellOpt, reason: str = typer.Option(..., "--reason"),
           data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Extend a request's deadline by two months, with a reason."""
    svc = open_services(data_dir)
    try:
        chosen = svc.dbs.check_cell(cell or svc.settings.default_cell)
        emit(svc.privacy.dsr.extend(chosen, request_id, reason=reason, actor="operator:cli"), as_json=as_json)
    finally:
        svc.close()


@residency_app.command("report")
@handle_errors
def residency_report(data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Scan the global plane and every cell for identifiers of another cell's subjects; exit 1 on any finding."""
    svc = open_services(data_dir)
    try:
        doc = svc.privacy.residency.report()
    finally:
        svc.close()
    if as_json:
        emit(doc, as_json=True)
    else:
        emit([{"cell": cell, **counts} for cell, counts in doc["subjects"].items()], as_json=False,
             title="subjects per cell")
        console.print(f"{doc['stores_scanned']} tables, {doc['rows_scanned']:,} rows scanned")
        if doc["findings"]:
            emit(doc["findings"], as_json=False, title="personal data outside its cell")
        else:
            console.print("[green]clean[/green]: no personal data of a cell's subjects outside that cell")
    if not doc["ok"]:
        raise typer.Exit(1)


@audit_app.command("verify")
@handle_errors
def verify(cell: str | None = typer.Option(None, "--cell"), data_dir: Path | None = DataDir,
           as_json: bool = JsonOut) -> None:
    """Recompute each cell's hash chain; exit 1 when an entry was modified or removed."""
    svc = open_services(data_dir)
    try:
        cells = [svc.dbs.check_cell(cell)] if cell else svc.dbs.cells
        results = [svc.privacy.audit.verify(c).to_dict() for c in cells]
    finally:
        svc.close()
    if as_json:
        emit({"ok": all(r["ok"] for r in results), "cells": results}, as_json=True)
    else:
        for r in results:
            mark = "[green]ok[/green]" if r["ok"] else "[red]BROKEN[/red]"
            console.print(f"{r['cell']}: {mark} {r['entries']} entries, head {r['head'][:16]}")
            for p in r["problems"]:
                console.print(f"  • {p}")
    if not all(r["ok"] for r in results):
        raise typer.Exit(1)


@audit_app.command("log")
@handle_errors
def log(cell: str | None = CellOpt, subject: str | None = typer.Option(None, "--subject"),
        limit: int = typer.Option(50, "--limit"), everything: bool = typer.Option(False, "--all", help="every entry"),
        data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """The newest entries of a cell's audit log (of one subject)."""
    svc = open_services(data_dir)
    try:
        chosen = svc.dbs.check_cell(cell or svc.settings.default_cell)
        emit_page(lambda offset, n: svc.privacy.audit.entries(chosen, subject=subject, limit=offset + n)[offset:],
                  limit=limit, everything=everything, as_json=as_json, how="--limit N or --all",
                  columns=["seq", "at", "actor", "action", "subject"])
    finally:
        svc.close()


def register(app: typer.Typer) -> None:
    """Add the privacy, residency and audit sub-apps to the `ecohub` CLI."""
    app.add_typer(privacy_app, name="privacy")
    app.add_typer(residency_app, name="residency")
    app.add_typer(audit_app, name="audit")
