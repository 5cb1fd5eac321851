"""Export and erasure of one registered store: the streamed zip writer, and privacy's own tables' handlers."""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
import tempfile
import zipfile
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from sqlalchemy import JSON, ColumnElement, LargeBinary, Table, Text, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from ecohub.privacy.models import AuditEntry, Consent, DsrRequest, PartnerAck, PartnerRecipient, SubjectKey
from ecohub.privacy.registry import ExportContext, Scope, SealedColumn, StoreHandler
from ecohub.privacy.sealing import Opener

# Kept on erasure, with the reason (Art. 17(3)); everything else personal is deleted.
RETAINED = {"audit_log": "accountability record, legal obligation (Art. 17(3)(b)); pseudonymous ids only",
            "dsr_requests": "proof the request was handled (Art. 5(2)); pseudonymous ids only",
            "partner_acks": "proof recipients were notified (Art. 19); pseudonymous device ids only"}
# Never exported as such (key material); destroyed first on erasure by the DSR service itself.
KEYS = "subject_keys"
SPOOL_BYTES = 32 * 1024 * 1024


def _requests(sc: Scope) -> ColumnElement[bool]:
    return PartnerAck.request_id.in_(select(DsrRequest.id).where(DsrRequest.subject_id == sc.user_id))


def _t(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def own_handlers() -> list[StoreHandler]:
    """The handlers of privacy's own personal tables (consents, recipients, audit, requests, acks, keys)."""
    return [
        StoreHandler(_t(Consent), "privacy", lambda sc: Consent.user_id == sc.user_id),
        StoreHandler(_t(PartnerRecipient), "privacy", lambda sc: PartnerRecipient.user_id == sc.user_id),
        StoreHandler(_t(AuditEntry), "privacy", lambda sc: or_(AuditEntry.subject == sc.user_id,
                                                               AuditEntry.actor == sc.actor),
                     retained=RETAINED["audit_log"]),
        StoreHandler(_t(DsrRequest), "privacy", lambda sc: DsrRequest.subject_id == sc.user_id,
                     retained=RETAINED["dsr_requests"]),
        StoreHandler(_t(PartnerAck), "privacy", _requests, retained=RETAINED["partner_acks"]),
        StoreHandler(_t(SubjectKey), "privacy", lambda sc: SubjectKey.subject_id == sc.user_id, exported=False),
    ]


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
                  sealed: SealedColumn, opener: Opener) -> int:
    """Rows of a sealed store: the database renders the other columns, Python opens the payload."""
    column, aad_cols, aad = sealed.column, sealed.aad_columns, sealed.aad
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


def write_store(zf: zipfile.ZipFile, s: Session, handler: StoreHandler, sc: Scope, ctx: ExportContext) -> int:
    """`{name}.json` (an array of objects) and `{name}.csv` of one store, in one streamed pass; → rows written.

    Without a transform the database renders each row's JSON object (json_object / json_build_object), so a
    million telemetry rows cost one fetch and two writes each in Python; a sealed payload is decrypted with
    the context's opener and spliced in as the JSON text it was sealed from.
    """
    t, name, sealed, transform = handler.table, handler.name, handler.sealed, handler.transform
    names = [c.name for c in t.columns]
    if sealed is not None:
        names = [c for c in names if c != "sealed"]
    where = handler.where(sc)
    n = 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        csv_out = io.TextIOWrapper(spool, encoding="utf-8", newline="")
        w = csv.writer(csv_out)
        w.writerow(names)
        with zf.open(f"{name}.json", "w", force_zip64=True) as raw:
            out = io.TextIOWrapper(raw, encoding="utf-8")
            out.write("[")
            if sealed is not None:
                n = _write_sealed(out, w, s, t, where, sealed, ctx.opener)
            elif transform is None:
                obj, csv_cols = _fast_columns(t, s.get_bind().dialect.name)
                q = select(obj, *csv_cols).where(where).execution_options(yield_per=10_000)
                for row in s.execute(q):
                    out.write(("\n," if n else "\n") + row[0])
                    w.writerow(row[1:])
                    n += 1
            else:
                for mapping in s.execute(select(t).where(where)).mappings():
                    values = transform(dict(mapping), ctx)
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
