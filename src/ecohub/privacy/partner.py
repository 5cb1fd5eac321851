"""Partner access: pseudonymous (per-partner keyed) fleet data of consenting owners, and erasure notices."""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ecohub.auth import Principal, Role
from ecohub.errors import ErrorCode, Forbidden, NotFound
from ecohub.privacy.audit import AuditLog
from ecohub.privacy.consent import consenting
from ecohub.privacy.domain import Purpose
from ecohub.privacy.models import PartnerAck, PartnerRecipient
from ecohub.privacy.registry import Lookups
from ecohub.privacy.sealing import PayloadSealer, twin_aad
from ecohub.store import Databases, utcnow
from ecohub.store.upsert import upsert

FLEET_PURPOSE = Purpose.DEVICE_DIAGNOSTICS_TO_MAKER


def partner_of(p: Principal) -> str:
    """The partner a caller acts for."""
    if p.role != Role.PARTNER or not p.partner_id:
        raise Forbidden("this is for partners", code=ErrorCode.WRONG_ROLE)
    return p.partner_id


class PartnerAccess:
    """What partners may see of end users' devices, and the erasure notices they must acknowledge.

    Device facts come from their owners' registered look-ups: devices and makers (connect), owners (home),
    online state and reported values (twin).
    """

    def __init__(self, dbs: Databases, audit: AuditLog, sealer: PayloadSealer, lookups: Lookups, *,
                 secret_key: bytes) -> None:
        self.dbs = dbs
        self.audit = audit
        self.sealer = sealer
        self.lookups = lookups
        self._secret = secret_key

    def makers(self, s: Session, dids: Sequence[str]) -> dict[str, str | None]:
        """did → its maker (partner), for the devices among `dids`."""
        assert self.lookups.makers is not None
        return self.lookups.makers(s, dids)

    def pseudonym(self, partner_id: str, did: str) -> str:
        """HMAC of the device id under a key of this partner: stable for them, unlinkable across partners."""
        key = hmac.new(self._secret, b"partner-pseudonym:" + partner_id.encode(), hashlib.sha256).digest()
        return hmac.new(key, did.encode(), hashlib.sha256).hexdigest()[:32]

    def fleet(self, p: Principal) -> dict[str, Any]:
        """Recent values of the partner's devices whose owners consent now, plus aggregate counts per model."""
        pid = partner_of(p)
        lk = self.lookups
        assert lk.partner_devices and lk.online and lk.owners and lk.reported, "device look-ups are not registered"
        devices: list[dict[str, Any]] = []
        models: dict[str, dict[str, int]] = defaultdict(lambda: {"devices": 0, "bound": 0, "online": 0})
        for cell in self.dbs.cells:
            with self.dbs.cell_session(cell) as s:
                model_of = lk.partner_devices(s, pid)
                online = lk.online(s, list(model_of)) if model_of else set()
                for did, model in model_of.items():
                    models[model]["devices"] += 1
                    models[model]["online"] += did in online
                owned = [(did, since, owner, model_of[did])
                         for did, since, owner in (lk.owners(s, list(model_of)) if model_of else [])]
                for _, _, _, model in owned:
                    models[model]["bound"] += 1
                allowed = consenting(s, (o for _, _, o, _ in owned), FLEET_PURPOSE)
                shared = [(did, since, owner, model) for did, since, owner, model in owned if owner in allowed]
                values: dict[str, dict[str, Any]] = defaultdict(dict)
                if shared:
                    since_of = {did: since for did, since, _, _ in shared}
                    opener = self.sealer.opener(s, cell)
                    for prop in lk.reported(s, list(since_of)):
                        if prop.ts is not None and prop.ts >= since_of[prop.did]:
                            readable, value = opener.value(prop.value, prop.subject, prop.sealed,
                                                           twin_aad(prop.did, prop.key))
                            if readable:
                                values[prop.did][prop.key] = {"value": value, "ts": prop.ts}
                    now = utcnow()
                    upsert(s, PartnerRecipient.__table__,
                           [{"user_id": o, "partner_id": pid, "purpose": FLEET_PURPOSE.value, "first_at": now,
                             "last_at": now} for o in {o for _, _, o, _ in shared}],
                           keys=["user_id", "partner_id"], update={"last_at": lambda ex: ex.last_at})
                devices += [{"device": self.pseudonym(pid, did), "model": model, "cell": cell,
                             "properties": values.get(did, {})} for did, _, _, model in shared]
            if shared:
                self.audit.append(cell, actor=p.actor, action="partner.fleet_read",
                                  detail={"purpose": FLEET_PURPOSE.value, "devices": len(shared),
                                          "subjects": sorted({o for _, _, o, _ in shared})})
        return {"partner_id": pid, "purpose": FLEET_PURPOSE.value, "devices": devices,
                "aggregate": [{"model": m, **c} for m, c in sorted(models.items())]}

    def notices(self, p: Principal) -> list[dict[str, Any]]:
        """Erasure notices this partner has not acknowledged yet (pseudonymous device ids to delete)."""
        pid = partner_of(p)
        out = []
        for cell in self.dbs.cells:
            with self.dbs.cell_session(cell) as s:
                q = select(PartnerAck).where(PartnerAck.partner_id == pid, PartnerAck.acked_at.is_(None))
                out += [{"request_id": a.request_id, "cell": cell, "devices": a.pseudonyms,
                         "notified_at": a.notified_at.isoformat()} for a in s.scalars(q)]
        return out

    def acknowledge(self, p: Principal, request_id: str) -> str:
        """Record that the partner erased what it received for a request; → the request's cell."""
        pid = partner_of(p)
        for cell in self.dbs.cells:
            with self.dbs.cell_session(cell) as s:
                done = s.execute(update(PartnerAck).where(PartnerAck.request_id == request_id,
                                                          PartnerAck.partner_id == pid,
                                                          PartnerAck.acked_at.is_(None))
                                 .values(acked_at=utcnow())).rowcount  # type: ignore[attr-defined]
            if done:
                return cell
        raise NotFound(f"no pending erasure notice {request_id} for you", code=ErrorCode.UNKNOWN_NOTICE)
