"""The subject's rows in each store of the data map: one selector per personal table, for export and erasure."""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    LargeBinary,
    Table,
    Text,
    and_,
    cast,
    delete,
    false,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from ecohub.home.models import Binding, Home
from ecohub.privacy.sealing import Opener, event_aad, telemetry_aad, twin_aad
from ecohub.store.db import plane_metadata as metadata_for

# Kept on erasure, with the reason (Art. 17(3)); everything else personal is deleted.
RETAINED = {"audit_log": "accountability record, legal obligation (Art. 17(3)(b)); pseudonymous ids only",
            "dsr_requests": "proof the request was handled (Art. 5(2)); pseudonymous ids only",
            "partner_acks": "proof recipients were notified (Art. 19); pseudonymous device ids only"}
# Never exported as such (key material); destroyed first on erasure by the DSR service itself.
KEYS = "subject_keys"
SPOOL_BYTES = 32 * 1024 * 1024
# Stores whose payload column is sealed with the owner's key: (column, the columns its AAD is built from, AAD).
SEALED_STORES: dict[str, tuple[str, tuple[str, ...], Callable[..., bytes]]] = {
    "telemetry": ("value", ("did", "key"), telemetry_aad),
    "device_events": ("arguments", ("did", "siid", "eiid"), event_aad),
    "twin_properties": ("value", ("did", "key"), twin_aad),
}


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose rows: the user, the homes they own, and their bound devices with the epoch they own."""

    user_id: str
    homes: tuple[str, ...]
    devices: dict[str, int]  # did → bound_ms

    @property
    def actor(self) -> str:
        """How the user appears in `requested_by`/actor columns."""
        return f"user:{self.user_id}"


def scope_of(s: Session, user_id: str) -> Scope:
    """Resolve a user's homes and bound devices in their cell."""
    homes = tuple(s.scalars(select(Home.id).where(Home.owner_id == user_id)))
    devices = {did: since for did, since in s.execute(select(Binding.did, Binding.bound_ms)
                                                      .where(Binding.home_id.in_(homes)))} if homes else {}
    return Scope(user_id, homes, devices)


def _owned_epoch(t: Table, sc: Scope, ts_col: str) -> ColumnElement[bool]:
    """Rows of the user's devices from the time they bound them (earlier data belongs to a previous owner)."""
    if not sc.devices:
        return false()
    return or_(*(and_(t.c.did == did, t.c[ts_col] >= since) for did, since in sc.devices.items()))


def _dids(t: Table, sc: Scope) -> ColumnElement[bool]:
    return t.c.did.in_(list(sc.devices)) if sc.devices else false()


def _homes(t: Table, sc: Scope) -> ColumnElement[bool]:
    return t.c.home_id.in_(list(sc.homes)) if sc.homes else false()


def _runs(t: Table, sc: Scope) -> ColumnElement[bool]:
    rules = metadata_for("cell").tables["automation_rules"]
    return t.c.rule_id.in_(select(rules.c.id).where(rules.c.home_id.in_(list(sc.homes)))) if sc.homes else false()


def _requests(t: Table, sc: Scope) -> ColumnElement[bool]:
    reqs = metadata_for("cell").tables["dsr_requests"]
    return t.c.request_id.in_(select(reqs.c.id).where(reqs.c.subject_id == sc.user_id))


Selector = Callable[[Table, Scope], ColumnElement[bool]]
SELECTORS: dict[str, Selector] = {
    "users": lambda t, sc: t.c.id == sc.user_id,
    "user_tokens": lambda t, sc: t.c.user_id == sc.user_id,
    "homes": lambda t, sc: t.c.owner_id == sc.user_id,
    "rooms": _homes,
    "home_members": lambda t, sc: or_(t.c.user_id == sc.user_id, _homes(t, sc)),
    "bindings": _homes,
    "automation_rules": _homes,
    "automation_runs": _runs,
    "twins": _dids,
    "twin_properties": _dids,
    "telemetry": lambda t, sc: _owned_epoch(t, sc, "ts"),
    "device_events": lambda t, sc: _owned_epoch(t, sc, "ts"),
    "commands": lambda t, sc: or_(_owned_epoch(t, sc, "created_ms"), t.c.requested_by == sc.actor),
    "dead_letters": lambda t, sc: _owned_epoch(t, sc, "received_ms"),
    "inbox": lambda t, sc: _owned_epoch(t, sc, "received_ms"),
    "consents": lambda t, sc: t.c.user_id == sc.user_id,
    "partner_recipients": lambda t, sc: t.c.user_id == sc.user_id,
    "audit_log": lambda t, sc: or_(t.c.subject == sc.user_id, t.c.actor == sc.actor),
    "dsr_requests": lambda t, sc: t.c.subject_id == sc.user_id,
    "partner_acks": _requests,
    KEYS: lambda t, sc: t.c.subject_id == sc.user_id,
}
# Children before parents, so foreign keys hold while deleting.
ERASE_ORDER = ("automation_runs", "automation_rules", "telemetry", "device_events", "commands", "dead_letters",
               "inbox", "twin_properties", "twins", "bindings", "home_members", "rooms", "homes", "user_tokens",
               "consents", "partner_recipients", "users")


def table(name: str) -> Table:
    """A cell table by name."""
    return metadata_for("cell").tables[name]


def erase_store(s: Session, name: str, sc: Scope) -> dict[str, Any]:
    """Delete (or, for others' devices' command history, de-identify) the subject's rows of one store."""
    t = table(name)
    if name == "commands":
        mine = _owned_epoch(t, sc, "created_ms")
        n = s.execute(delete(t).where(mine)).rowcount  # type: ignore[attr-defined]
        m = s.execute(update(t).where(t.c.requested_by == sc.actor)  # type: ignore[attr-defined]
                      .values(requested_by="user:erased")).rowcount
        return {"deleted": n, "deidentified": m}
    return {"deleted": s.execute(delete(t).where(SELECTORS[name](t, sc))).rowcount}  # type: ignore[attr-defined]


def _encode(v: Any) -> str:
    """One value as JSON text (the export's hot loop: no generic json.dumps per row)."""
    if v is None:
        return "null"
    kind = type(v)
    if kind is bool:
        return "true" if v else "false"
    if kind is int or kind is float:
        return repr(v)
    if kind is str:
        return encode_basestring(v)
    if kind is bytes:
        return '"' + base64.b64encode(v).decode() + '"'
    if hasattr(v, "isoformat"):
        return '"' + v.isoformat() + '"'
    return json.dumps(v, default=str)


def _write_sealed(out: io.TextIOWrapper, w: Any, s: Session, t: Table, where: ColumnElement[bool],
                  sealed: tuple[str, tuple[str, ...], Callable[..., bytes]], opener: Opener) -> int:
    """Rows of a sealed store: the database renders the other columns, Python opens the payload."""
    column, aad_cols, aad = sealed
    dialect = s.get_bind().dialect.name
    obj, csv_cols = _fast_columns(t, dialect, skip=(column, "sealed"))
    plain = func.json(t.c[column]) if dialect == "sqlite" else cast(t.c[column], Text)
    k = len(aad_cols)
    at = [c.name for c in t.columns if c.name != "sealed"].index(column)  # where the payload goes in the CSV
    q = (select(obj, plain, t.c.subject, t.c.sealed, *(t.c[c] for c in aad_cols), *csv_cols)
         .where(where).execution_options(yield_per=10_000))
    n = 0
    for row in s.execute(q):
        text, subject, blob = row[1], row[2], row[3]
        if blob is not None:
            readable, value = opener.raw(subject, blob, aad(*row[4:4 + k]))
            text = value.decode() if readable else "null"
        elif text is None:
            text = "null"
        out.write(("\n," if n else "\n") + row[0][:-1] + f',"{column}":' + text + "}")
        rest = row[4 + k:]
        w.writerow((*rest[:at], text, *rest[at:]))
        n += 1
    return n


def _csv_value(v: Any) -> Any:
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    return v.isoformat() if hasattr(v, "isoformat") else v


def _fast_columns(t: Table, dialect: str, skip: tuple[str, ...] = ()) -> tuple[Any, list[Any]]:
    """(one JSON object per row built by the database, the columns as CSV wants them) for a table."""
    sqlite = dialect == "sqlite"
    obj_args: list[Any] = []
    csv_cols: list[Any] = []
    for c in t.columns:
        if c.name in skip:
            continue
        if isinstance(c.type, LargeBinary):
            v = func.hex(c) if sqlite else func.encode(c, "hex")
            obj_args += [literal(c.name), v]
            csv_cols.append(v)
        elif isinstance(c.type, JSON):
            obj_args += [literal(c.name), func.json(c) if sqlite else c]
            csv_cols.append(cast(c, Text))
        else:
            obj_args += [literal(c.name), c]
            csv_cols.append(c)
    obj = (func.json_object if sqlite else func.json_build_object)(*obj_args)
    return cast(obj, Text), csv_cols


def write_store(zf: zipfile.ZipFile, s: Session, name: str, sc: Scope,
                transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                opener: Opener | None = None) -> int:
    """`{name}.json` (an array of objects) and `{name}.csv` of one store, in one streamed pass; → rows written.

    Without a transform the database renders each row's JSON object (json_object / json_build_object), so a
    million telemetry rows cost one fetch and two writes each in Python; a sealed payload is decrypted with
    `opener` and spliced in as the JSON text it was sealed from.
    """
    t = table(name)
    sealed = SEALED_STORES.get(name)
    names = [c.name for c in t.columns]
    if sealed is not None:
        names = [c for c in names if c != "sealed"]
    where = SELECTORS[name](t, sc)
    n = 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        csv_out = io.TextIOWrapper(spool, encoding="utf-8", newline="")
        w = csv.writer(csv_out)
        w.writerow(names)
        with zf.open(f"{name}.json", "w", force_zip64=True) as raw:
            out = io.TextIOWrapper(raw, encoding="utf-8")
            out.write("[")
            if sealed is not None:
                if opener is None:
                    raise ValueError(f"exporting {name} needs an opener for its sealed payloads")
                n = _write_sealed(out, w, s, t, where, sealed, opener)
            elif transform is None:
                obj, csv_cols = _fast_columns(t, s.get_bind().dialect.name)
                q = select(obj, *csv_cols).where(where).execution_options(yield_per=10_000)
                for row in s.execute(q):
                    out.write(("\n," if n else "\n") + row[0])
                    w.writerow(row[1:])
                    n += 1
            else:
                for mapping in s.execute(select(t).where(where)).mappings():
                    values = transform(dict(mapping))
                    out.write(("\n," if n else "\n") + "{" + ",".join(
                        encode_basestring(k) + ":" + _encode(v) for k, v in values.items()) + "}")
                    w.writerow([_csv_value(values[k]) for k in names])
                    n += 1
            out.write("\n]\n")
            out.flush()
            out.detach()
        csv_out.flush()
        csv_out.detach()
        spool.seek(0)
        with zf.open(f"{name}.csv", "w", force_zip64=True) as raw:
            shutil.copyfileobj(spool, raw, 1024 * 1024)
    return n
