"""Run the suite against a running hub: provision units over its API, start the device process, run every check."""

from __future__ import annotations

import asyncio
import logging
import secrets
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecohub.certify import ota, security, suite
from ecohub.certify.client import HubApi
from ecohub.certify.context import Context, Outcome, Timing
from ecohub.certify.devproc import DeviceProcess, default_device_cmd, sdk_device_cmd
from ecohub.certify.domain import (
    CHECK_BY_ID,
    MARKET_PROFILES,
    Declaration,
    MarketTable,
    Status,
    market_verdicts,
    profiles_of,
)
from ecohub.certify.probe import Probe
from ecohub.certify.report import build
from ecohub.certify.target import HubUnderTest
from ecohub.spec import CompiledSpec, compile_spec, parse_spec

log = logging.getLogger(__name__)

CheckFn = Callable[[Context], Awaitable[Outcome]]
CHECK_CAP_S = 90.0
UNITS = 2  # device units provisioned per run: the security checks need a second one to impersonate
RECONNECT_METHOD = ("session take-over with the unit's own client id and credentials (the broker drops the "
                    "device's connection; it must come back)")

# The order matters: the impersonation drops the connection, connect.reconnect sees the unit come back, the kill
# comes late.
STEPS: tuple[tuple[str, CheckFn, bool], ...] = (  # (check id, function, needs unit A online)
    ("connect.auth", security.connect_auth, False),
    ("security.unique_credentials", security.unique_credentials, False),
    ("connect.retained_state", security.connect_retained_state, True),
    ("properties.reported", suite.properties_reported, True),
    ("events.arguments", suite.events_arguments, True),
    ("properties.get", suite.properties_get, True),
    ("properties.set_roundtrip", suite.properties_set_roundtrip, True),
    ("writes.refused_out_of_range", suite.writes_refused_out_of_range, True),
    ("writes.refused_wrong_type", suite.writes_refused_wrong_type, True),
    ("writes.refused_not_writable", suite.writes_refused_not_writable, True),
    ("actions.answer", suite.actions_answer, True),
    ("ota.firmware_version", ota.firmware_version, True),
    ("ota.refuses_bad_signature", ota.refuses_bad_signature, True),
    ("security.broker_isolation", security.broker_isolation, True),
    ("connect.reconnect", security.connect_reconnect, True),
    ("state.offline_will", security.offline_will, True),
    ("state.back_online", security.back_online, True),
    ("security.no_foreign_attempts", security.no_foreign_attempts, False),
    ("limits.message_rate", suite.limits_message_rate, False),
    ("limits.payload_size", suite.limits_payload_size, False),
    ("declaration.vulnerability_contact", security.declaration_vulnerability_contact, False),
    ("declaration.support_period", security.declaration_support_period, False),
    ("declaration.secure_update", security.declaration_secure_update, False),
    ("declaration.privacy", security.declaration_privacy, False),
)
assert {s[0] for s in STEPS} == set(CHECK_BY_ID), "every catalogued check has a step"

Progress = Callable[[str, str, dict[str, Any] | None], None]  # (event "start"|"done", check id, result)


@dataclass
class RunOptions:
    """What to certify and how."""

    model: str
    device_cmd: str | None = None  # None: the reference simulator on the credentials
    markets: list[str] = field(default_factory=list)  # empty: every known market
    declaration: Declaration = field(default_factory=Declaration)
    timing: Timing = field(default_factory=Timing)
    rate_hz: float = 1.0  # of the default simulator
    fault: str | None = None  # of the default simulator (to prove the suite catches it)
    market_table: MarketTable | None = None  # None: the reference markets of certify.domain
    # the data dir `ecohub simulate` (the default device) reads the product from; None: the SDK simulator on the
    # spec file, which needs nothing of the hub's
    simulator_data_dir: Path | None = None


def _device_template(options: RunOptions) -> str:
    if options.device_cmd:
        return options.device_cmd
    if options.simulator_data_dir is not None:
        return default_device_cmd(options.model, data_dir=options.simulator_data_dir, rate_hz=options.rate_hz,
                                  fault=options.fault)
    return sdk_device_cmd(rate_hz=options.rate_hz, fault=options.fault)


async def run_suite(hub: HubUnderTest, options: RunOptions, *, on_progress: Progress | None = None) -> dict[str, Any]:
    """Run every check against a real device process connected to `hub`; returns the unsigned report document."""
    async with HubApi(hub) as api:
        product = await api.product(options.model)
        table = options.market_table or MARKET_PROFILES
        markets = ([m.upper() for m in options.markets] or list(product.get("target_markets") or ())
                   or [m for m in MARKET_PROFILES if m in table])
        for m in markets:
            profiles_of(m, table)  # refuse unknown markets before anything starts
        compiled = compile_spec(parse_spec(product["spec"]))
        started_at = datetime.now(UTC)
        units = [await api.provision(options.model) for _ in range(UNITS)]
        try:
            results, setup = await _run_checks(api, hub, options, compiled, units, on_progress)
        finally:
            for u in units:  # test credentials do not outlive the run, a failed one neither
                await api.revoke(u["did"])
    statuses = {r["id"]: Status(r["status"]) for r in results}
    verdicts = market_verdicts(statuses, markets, table)
    for r in results:
        r["required_by"] = [v["market"] for v in verdicts if r["id"] in v["required"]]
    return build(report_id=str(uuid.uuid4()), model=options.model, spec_hash=compiled.hash,
                 spec_version=int(product["spec_version"]), checks=results, markets=verdicts, setup=setup,
                 declaration=options.declaration.raw if options.declaration.present else None,
                 started_at=started_at, finished_at=datetime.now(UTC))


async def _run_checks(api: HubApi, hub: HubUnderTest, options: RunOptions, compiled: CompiledSpec,
                      units: list[dict[str, str]], on_progress: Progress | None,
                      ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The probe, the device process and every step in order; (results, the report's setup)."""
    results: list[dict[str, Any]] = []
    endpoint = hub.mqtt
    # asked once, before the device starts: a hub whose broker keeps no refusal log says so for every unit
    refusals_readable = await api.refusals(units[0]["did"]) is not None
    async with AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ecohub-certify-")))
        device = DeviceProcess(_device_template(options), creds=units, model=options.model, host=endpoint.host,
                               port=endpoint.port, workdir=workdir, spec=compiled.spec.document)
        probe = await stack.enter_async_context(
            Probe(endpoint, dids=[u["did"] for u in units], client_id=f"ecohub-certify-{secrets.token_hex(4)}"))
        ctx = Context(api=api, model=options.model, compiled=compiled, units=units, endpoint=endpoint, probe=probe,
                      device=device, refusals_readable=refusals_readable, hub_max_payload=hub.max_payload,
                      declaration=options.declaration, timing=options.timing)
        await stack.enter_async_context(device)
        ctx.t0 = time.monotonic()
        for check_id, fn, needs_online in STEPS:
            results.append(await _run_one(ctx, check_id, fn, needs_online, on_progress))
        setup = {"hub": hub.origin, "api": hub.api_url, "broker": f"mqtt://{endpoint.host}:{endpoint.port}",
                 "mqtt_version": "3.1.1", "units": [u["did"] for u in units], "device": device.describe(),
                 "timing": {k: getattr(options.timing, k) for k in options.timing.__dataclass_fields__},
                 "reconnect_method": RECONNECT_METHOD, "broker_refusal_log": refusals_readable}
    return results, setup


async def _run_one(ctx: Context, check_id: str, fn: CheckFn, needs_online: bool,
                   on_progress: Progress | None) -> dict[str, Any]:
    if on_progress:
        on_progress("start", check_id, None)
    start = time.monotonic()
    if needs_online and not ctx.online:
        outcome = Outcome(Status.SKIP, "not run: the unit never came online (see connect.auth)")
    else:
        try:
            outcome = await asyncio.wait_for(fn(ctx), timeout=CHECK_CAP_S)
        except TimeoutError:
            outcome = Outcome(Status.FAIL, f"the check did not finish within {CHECK_CAP_S:.0f}s")
        except Exception as err:  # a suite bug must not be blamed on the device: record it as not run
            log.exception("certification check %s crashed", check_id)
            outcome = Outcome(Status.SKIP, f"the suite failed running this check: {type(err).__name__}: {err}")
    definition = CHECK_BY_ID[check_id]
    result = {"id": check_id, "title": definition.title, "category": definition.category,
              "status": str(outcome.status), "reason": outcome.reason,
              "duration_ms": round((time.monotonic() - start) * 1000), "evidence": outcome.evidence}
    if on_progress:
        on_progress("done", check_id, result)
    return result
