"""The certification report: a versioned JSON document, its Ed25519 signature, verification and an HTML page."""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ecohub.certify.domain import CHECK_BY_ID, REPORT_VALIDITY_DAYS, SUITE_VERSION
from ecohub.certify.keys import key_id, raw_public

SCHEMA = "ecohub.certification-report"
SCHEMA_VERSION = 1


def canonical(doc: dict[str, Any]) -> bytes:
    """The signed bytes: the report without `signature`, as sorted compact UTF-8 JSON."""
    body = {k: v for k, v in doc.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def build(*, report_id: str, model: str, spec_hash: str, spec_version: int | None, checks: list[dict[str, Any]],
          markets: list[dict[str, Any]], setup: dict[str, Any], declaration: dict[str, Any] | None,
          started_at: datetime, finished_at: datetime, validity_days: int = REPORT_VALIDITY_DAYS) -> dict[str, Any]:
    """Assemble an unsigned report document (schema version 1)."""
    counts = {s: sum(1 for c in checks if c["status"] == s) for s in ("pass", "fail", "na", "skip")}
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "report_id": report_id,
        "suite_version": SUITE_VERSION,
        "model": model,
        "spec_hash": spec_hash,
        "spec_version": spec_version,
        "started_at": started_at.isoformat(),
        "issued_at": finished_at.isoformat(),
        "expires_at": (finished_at + timedelta(days=validity_days)).isoformat(),
        "setup": setup,
        "declaration": declaration,
        "summary": counts,
        "passed": bool(markets) and all(m["passed"] for m in markets),
        "markets": markets,
        "checks": checks,
    }


def sign(doc: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """Return the document with an Ed25519 `signature` over its canonical bytes."""
    public = key.public_key()
    signature = key.sign(canonical(doc))
    return {**{k: v for k, v in doc.items() if k != "signature"},
            "signature": {"alg": "Ed25519", "key_id": key_id(public),
                          "public_key": base64.b64encode(raw_public(public)).decode(),
                          "value": base64.b64encode(signature).decode()}}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of verifying a report: `valid` only when every problem list is empty."""

    signature_ok: bool
    trusted: bool
    expired: bool
    spec_current: bool | None  # None: no current spec hash to compare with
    problems: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "signature_ok": self.signature_ok, "trusted": self.trusted,
                "expired": self.expired, "spec_current": self.spec_current, "problems": list(self.problems)}


def verify(doc: Any, *, trusted: Ed25519PublicKey | None, current_spec_hash: str | None = None,
           now: datetime | None = None) -> Verdict:
    """Check the schema, the signature (with the trusted key if given), expiry and the spec hash."""
    problems: list[str] = []
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        return Verdict(False, False, False, None, ("not an ecohub certification report",))
    if doc.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"unsupported schema_version {doc.get('schema_version')!r} (this ecohub reads "
                        f"{SCHEMA_VERSION})")
    sig = doc.get("signature") or {}
    signature_ok = trusted_ok = False
    try:
        embedded = Ed25519PublicKey.from_public_bytes(base64.b64decode(sig.get("public_key", "")))
        embedded.verify(base64.b64decode(sig.get("value", "")), canonical(doc))
        signature_ok = True
        # trusted only when the key that verified the signature IS the trusted key
        trusted_ok = trusted is not None and raw_public(trusted) == raw_public(embedded)
    except (InvalidSignature, ValueError, TypeError):
        problems.append("the signature does not match the report (tampered, or signed by another key)")
    if signature_ok and not trusted_ok:
        problems.append(f"signed by key {sig.get('key_id')}, which is not the brand key"
                        + ("" if trusted else " (no brand key to check against: pass --public-key)"))
    expired = False
    try:
        expired = datetime.fromisoformat(str(doc.get("expires_at"))) <= (now or datetime.now(UTC))
    except ValueError:
        problems.append("expires_at is not a timestamp")
    if expired:
        problems.append(f"the report expired at {doc.get('expires_at')}")
    spec_current = None
    if current_spec_hash is not None:
        spec_current = doc.get("spec_hash") == current_spec_hash
        if not spec_current:
            problems.append(f"the report is for spec {str(doc.get('spec_hash'))[:12]}…, the product's current spec "
                            f"is {current_spec_hash[:12]}…")
    return Verdict(signature_ok, trusted_ok, expired, spec_current, tuple(problems))


_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1b1f24}
table{border-collapse:collapse;width:100%;margin:1rem 0}td,th{border-bottom:1px solid #ddd;padding:.35rem .5rem;
text-align:left;vertical-align:top}th{background:#f4f5f7}.pass{color:#17803d}.fail{color:#c01c28}.skip{color:#b35c00}
.na{color:#777}details pre{white-space:pre-wrap;font-size:12px;background:#f7f7f9;padding:.5rem}
code{font-size:12px}.badge{font-weight:700;text-transform:uppercase}"""


def render_html(doc: dict[str, Any]) -> str:
    """A self-contained page: summary, markets, every check with its evidence, the signature."""
    e = html.escape
    markets = "".join(
        f"<tr><td>{e(m['market'])}</td><td>{e(', '.join(m['profiles']))}</td>"
        f"<td class='badge {'pass' if m['passed'] else 'fail'}'>{'pass' if m['passed'] else 'fail'}</td>"
        f"<td>{e(', '.join(m['failing'])) or '—'}</td>"
        f"<td>{e(', '.join(m.get('evidence_required', []))) or '—'}</td></tr>" for m in doc["markets"])
    rows = []
    for c in doc["checks"]:
        refs = ", ".join(CHECK_BY_ID[c["id"]].refs) if c["id"] in CHECK_BY_ID else ""
        evidence = e(json.dumps(c.get("evidence", {}), indent=2, ensure_ascii=False, default=str))
        rows.append(f"<tr><td><code>{e(c['id'])}</code><br><small>{e(c['title'])}</small>"
                    f"{'<br><small>' + e(refs) + '</small>' if refs else ''}</td>"
                    f"<td class='badge {e(c['status'])}'>{e(c['status'])}</td><td>{c['duration_ms']} ms</td>"
                    f"<td>{e(c['reason'])}<details><summary>evidence</summary><pre>{evidence}</pre></details></td></tr>")
    sig = doc.get("signature") or {}
    verdict = "PASSED" if doc["passed"] else "FAILED"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Certification {e(doc['model'])} — {verdict}</title><style>{_CSS}</style></head><body>
<h1>Certification report: {e(doc['model'])} <span class="{'pass' if doc['passed'] else 'fail'}">{verdict}</span></h1>
<p>Report <code>{e(doc['report_id'])}</code> · suite {e(doc['suite_version'])} · schema {doc['schema_version']}<br>
Spec hash <code>{e(doc['spec_hash'])}</code> (version {doc.get('spec_version')})<br>
Issued {e(doc['issued_at'])} · expires {e(doc['expires_at'])}<br>
Summary: {doc['summary']['pass']} pass, {doc['summary']['fail']} fail, {doc['summary']['skip']} skip,
{doc['summary']['na']} not applicable</p>
<h2>Markets</h2><p>A market opens only when its required checks passed here <em>and</em> valid evidence
(certificate or lab report) is recorded for each regime it needs.</p>
<table><tr><th>market</th><th>profiles</th><th>checks</th><th>failing required checks</th>
<th>evidence needed</th></tr>
{markets}</table>
<h2>Checks</h2><table><tr><th>check</th><th>status</th><th>time</th><th>reason and evidence</th></tr>
{''.join(rows)}</table>
<h2>Setup</h2><pre>{e(json.dumps(doc.get('setup'), indent=2, default=str))}</pre>
<h2>Signature</h2><p>{e(sig.get('alg', 'unsigned'))} · key id <code>{e(str(sig.get('key_id')))}</code><br>
Verify with <code>ecohub certify verify report.json</code> (the JSON file is the signed document).</p>
</body></html>"""
