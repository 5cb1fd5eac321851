"""The privacy context wired once: keys, the sealed email vault, audit, consent, partner access, DSRs, residency."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from ecohub.auth import Principal, Role
from ecohub.home.accounts import AccountService
from ecohub.home.models import Binding
from ecohub.privacy.audit import AuditLog
from ecohub.privacy.consent import ConsentService
from ecohub.privacy.crypto import SealedEmailVault, SubjectKeys
from ecohub.privacy.dsr import DsrService
from ecohub.privacy.partner import PartnerAccess
from ecohub.privacy.residency import ResidencyScanner
from ecohub.privacy.sealing import PayloadSealer
from ecohub.region.domain import cell_of_did
from ecohub.store import Databases


@dataclass
class PrivacyContext:
    """Every privacy service of the hub."""

    keys: SubjectKeys
    sealer: PayloadSealer
    audit: AuditLog
    consents: ConsentService
    partners: PartnerAccess
    dsr: DsrService
    residency: ResidencyScanner

    @classmethod
    def build(cls, dbs: Databases, accounts: AccountService, *, keys: SubjectKeys, sealer: PayloadSealer,
              data_dir: Path, secret_key: bytes) -> PrivacyContext:
        """Wire the services; from now on the accounts' emails are sealed with each subject's key."""
        emails = SealedEmailVault(secret_key, dbs, keys)
        accounts.emails = emails
        audit = AuditLog(dbs, data_dir / "audit")
        partners = PartnerAccess(dbs, audit, sealer, secret_key=secret_key)
        return cls(keys=keys, sealer=sealer, audit=audit, consents=ConsentService(dbs, audit), partners=partners,
                   dsr=DsrService(dbs, audit, keys, accounts, emails, partners, sealer),
                   residency=ResidencyScanner(dbs, keys))

    def staff_read(self, principal: Principal, did: str, what: str, **detail: object) -> None:
        """Audit an operator's or partner's read of a device's data when the device is bound to a user."""
        if principal.role == Role.USER:
            return
        cell = cell_of_did(did)
        if cell not in self.audit.dbs.cells:
            return
        with self.audit.dbs.cell_session(cell) as s:
            bound = s.scalar(select(Binding.did).where(Binding.did == did)) is not None
        if bound:
            self.audit.append(cell, actor=principal.actor, action=f"staff.read.{what}", subject=did,
                              detail={k: v for k, v in detail.items() if v is not None})
