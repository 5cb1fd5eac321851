"""The audit's checks, as a registry of data: each a pure function of the gathered facts (add one here)."""

from __future__ import annotations

from collections.abc import Iterator

from ecohub.security.domain import Check, Facts, Hit, Severity, declared_rate, support_end

DAY_MS = 86_400_000


def firmware_vulnerable(f: Facts) -> Iterator[Hit]:
    """Devices whose twin reports a firmware version the operator marked vulnerable for their model."""
    for d in f.devices:
        reason = f.vulnerable.get((d.model, d.firmware_version or ""))
        if d.firmware_version is not None and reason is not None:
            yield Hit(d.did, {"model": d.model, "firmware_version": d.firmware_version, "reason": reason}, d.cell)


def support_period_ended(f: Facts) -> Iterator[Hit]:
    """Devices of a product whose declared security support period is over."""
    for d in f.devices:
        product = f.products.get(d.model)
        end = support_end(product.declaration if product else None)
        if end is not None and end <= f.today:
            yield Hit(d.did, {"model": d.model, "support_ended": end.isoformat()}, d.cell)


def repeated_auth_failures(f: Facts) -> Iterator[Hit]:
    """Device ids with many failed CONNECTs (wrong secret, or refused while backing off) in the window."""
    t = f.thresholds
    for did, (failures, addresses) in sorted(f.auth_failures.items()):
        if failures >= t.auth_failures:
            yield Hit(did, {"failures": failures, "addresses": addresses, "window_s": t.auth_window_s})


def many_source_addresses(f: Facts) -> Iterator[Hit]:
    """A device connecting from unusually many source addresses (a cloned or leaked credential)."""
    t = f.thresholds
    for did, addresses in sorted(f.source_addresses.items()):
        if addresses >= t.source_addresses:
            yield Hit(did, {"addresses": addresses, "window_s": t.source_window_s})


def message_rate_exceeded(f: Facts) -> Iterator[Hit]:
    """Devices sending more messages per second (averaged over the window) than their product declares."""
    window = f.thresholds.rate_window_s
    for d in f.devices:
        product = f.products.get(d.model)
        limit = declared_rate(product.declaration if product else None)
        count = f.message_counts.get(d.did, 0)
        if limit is not None and count / window > limit:
            yield Hit(d.did, {"model": d.model, "messages": count, "window_s": window,
                              "rate_per_s": round(count / window, 3), "declared_per_s": limit}, d.cell)


def declaration_missing_or_expired(f: Facts) -> Iterator[Hit]:
    """Products on sale or with devices in the field whose certification declaration is missing or expired."""
    now_s = f.now_ms / 1000
    for model, p in sorted(f.products.items()):
        if p.stage not in ("approved", "launched") and p.devices == 0:
            continue
        if p.declaration is None:
            yield Hit(model, {"stage": p.stage, "devices": p.devices, "problem": "missing",
                              "why": "no certification report with a product declaration"})
        elif p.report_expires is not None and p.report_expires.timestamp() <= now_s:
            yield Hit(model, {"stage": p.stage, "devices": p.devices, "problem": "expired",
                              "expired": p.report_expires.isoformat()})


def firmware_never_updated(f: Facts) -> Iterator[Hit]:
    """Devices still on the first firmware version the audit saw them report, for longer than the limit, for which
    no OTA campaign ever completed an update (a device updated and rolled back between two audits did update)."""
    limit_ms = f.thresholds.never_updated_days * DAY_MS
    for d in f.devices:
        if d.firmware_version is None or d.first_firmware is None or d.last_update_ms is not None:
            continue
        version, since = d.first_firmware
        if version == d.firmware_version and f.now_ms - since >= limit_ms:
            yield Hit(d.did, {"model": d.model, "firmware_version": version,
                              "days": int((f.now_ms - since) // DAY_MS)}, d.cell)


CHECKS: tuple[Check, ...] = (
    Check("firmware.vulnerable", Severity.CRITICAL, "device runs a firmware version marked vulnerable", "device",
          firmware_vulnerable),
    Check("support.period_ended", Severity.HIGH, "device's product is past its declared security support period",
          "device", support_period_ended),
    Check("auth.repeated_failures", Severity.HIGH, "repeated failed connects (wrong secret) for a device id",
          "device", repeated_auth_failures),
    Check("connect.many_addresses", Severity.MEDIUM, "device connected from unusually many source addresses",
          "device", many_source_addresses),
    Check("ingest.rate_exceeded", Severity.MEDIUM, "device sends above its product's declared message rate",
          "device", message_rate_exceeded),
    Check("declaration.missing_or_expired", Severity.HIGH,
          "product in the field without a valid certification declaration", "product",
          declaration_missing_or_expired),
    Check("firmware.never_updated", Severity.LOW, "device never updated its firmware", "device",
          firmware_never_updated),
)
BY_ID = {c.id: c for c in CHECKS}
