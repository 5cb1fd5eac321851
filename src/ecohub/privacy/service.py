"""The privacy context wired once: keys, the data registry, audit, consent, partner access, DSRs, residency."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ecohub.auth import Principal, Role
from ecohub.privacy.audit import AuditLog
from ecohub.privacy.consent import ConsentService
from ecohub.privacy.crypto import SubjectKeys
from ecohub.privacy.dsr import DsrService
from ecohub.privacy.partner import PartnerAccess
from ecohub.privacy.registry import DataRegistry
from ecohub.privacy.residency import ResidencyScanner
from ecohub.privacy.sealing import PayloadSealer
from ecohub.privacy.stores import own_handlers
from ecohub.region.domain import cell_of_did
from ecohub.store import Databases


@dataclass
class PrivacyContext:
    """Every privacy service of the hub."""

    keys: SubjectKeys
    sealer: PayloadSealer
    registry: DataRegistry
    audit: AuditLog
    consents: ConsentService
    partners: PartnerAccess
    dsr: DsrService
    residency: ResidencyScanner

    @classmethod
    def build(cls, dbs: Databases, registry: DataRegistry, *, keys: SubjectKeys, sealer: PayloadSealer,
              data_dir: Path, secret_key: bytes) -> PrivacyContext:
        """Wire the services over a registry the owning contexts filled; refuse one that leaves a store unhandled."""
        registry.add(*own_handlers())
        registry.check()
        audit = AuditLog(dbs, data_dir / "audit")
        partners = PartnerAccess(dbs, audit, sealer, registry.lookups, secret_key=secret_key)
        return cls(keys=keys, sealer=sealer, registry=registry, audit=audit, consents=ConsentService(dbs, audit),
                   partners=partners, dsr=DsrService(dbs, audit, keys, registry, partners, sealer),
                   residency=ResidencyScanner(dbs, keys, registry.lookups))

    def staff_read(self, principal: Principal, did: str, what: str, **detail: object) -> None:
        """Audit an operator's or partner's read of a device's data when the device is bound to a user."""
        if principal.role == Role.USER:
            return
        cell = cell_of_did(did)
        if cell not in self.audit.dbs.cells:
            return
        owners = self.registry.lookups.owners
        assert owners is not None
        with self.audit.dbs.cell_session(cell) as s:
            bound = bool(owners(s, [did]))
        if bound:
            self.audit.append(cell, actor=principal.actor, action=f"staff.read.{what}", subject=did,
                              detail={k: v for k, v in detail.items() if v is not None})
