"""CLI commands that run a hub: `up` and `demo`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import typer

from ecohub.api.app import create_app
from ecohub.bootstrap import Services, bootstrap
from ecohub.cli.common import DatabaseOpt, DataDir, console, handle_errors, make_settings
from ecohub.demo.load import DEMO_HOME, load_demo
from ecohub.hub import free_port, port_is_free, serve_until_stopped
from ecohub.sdk.simulator import run_fleet


def register(app: typer.Typer) -> None:
    """Attach `init`, `up` and `demo`."""
    app.command("init")(init)
    app.command("up")(up)
    app.command("demo")(demo)


@handle_errors
def init(data_dir: Path | None = DataDir, database: str | None = DatabaseOpt) -> None:
    """Create a data dir (databases migrated, keys made); the other data commands refuse a missing one."""
    services = bootstrap(make_settings(data_dir, database=database, create=True))
    services.close()
    console.print(f"data dir ready: {services.settings.data_dir.resolve()}")


def _pick_port(host: str, requested: int | None, default: int, what: str) -> int:
    if requested is not None:
        return requested
    if port_is_free(host, default):
        return default
    port = free_port(host)
    console.print(f"[yellow]{what} port {default} is in use; using {port}[/yellow]")
    return port


def _run(coro_factory: object) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(coro_factory)  # type: ignore[arg-type]
    console.print("stopped")


@handle_errors
def up(data_dir: Path | None = DataDir, http_port: int | None = typer.Option(None, "--http-port", help="default 8080"),
       mqtt_port: int | None = typer.Option(None, "--mqtt-port", help="default 1883"),
       broker: str = typer.Option("embedded", "--broker",
                                  help="embedded (a NATS server this hub runs on --mqtt-port) or "
                                       "nats://host:port[,host:port…] (a NATS cluster, see docs/deploy.md)"),
       host: str = typer.Option("127.0.0.1", "--host"), verbose: bool = typer.Option(False, "--verbose"),
       database: str | None = DatabaseOpt) -> None:
    """Run the hub: API, the embedded NATS broker (or a cluster's) and an ingest worker, in one process."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    services = bootstrap(make_settings(data_dir, database=database, create=True))
    http = _pick_port(host, http_port, 8080, "HTTP")
    mqtt = _pick_port(host, mqtt_port, 1883, "MQTT") if broker == "embedded" else 0

    async def ready(hub: Services) -> None:
        console.print(f"ecohub is up: API {hub.runtime.http_url}/api/v1/docs  MQTT {hub.runtime.mqtt_host}:"
                      f"{hub.runtime.mqtt_port}  data {hub.settings.data_dir}")
        console.print("an operator token: [bold]ecohub token create --role operator[/bold]; Ctrl-C stops")

    _run(serve_until_stopped(services, app_factory=create_app,
                             on_ready=ready, http_port=http, mqtt_port=mqtt, broker=broker, host=host))


@handle_errors
def demo(data_dir: Path | None = DataDir, devices: int = typer.Option(50, "--devices", min=0),
         http_port: int | None = typer.Option(None, "--http-port"),
         mqtt_port: int | None = typer.Option(None, "--mqtt-port"),
         rate: float = typer.Option(0.2, "--rate", help="reports per second per simulated device"),
         load_only: bool = typer.Option(False, "--load-only", help="load the demo into the data dir and exit"),
         host: str = typer.Option("127.0.0.1", "--host")) -> None:
    """Up + the demo ecosystem + a simulated fleet + where to look."""
    logging.basicConfig(level=logging.WARNING)
    services = bootstrap(make_settings(data_dir, create=True))
    with console.status("loading the demo ecosystem…"):
        state = load_demo(services, devices=devices, app_factory=create_app)
    console.print(f"demo loaded into {services.settings.data_dir}: the generated ecosystem and a fleet of "
                  f"{len(state.fleet)} devices of {len(state.models)} real product specs; {state.listed} listings, "
                  "all certified (report + evidence)")
    if load_only:
        console.print(f"operator token: {state.token}")
        if state.user is not None:
            console.print(f"home user: {state.user.email} / {state.user.password}")
        return
    http = _pick_port(host, http_port, 8080, "HTTP")
    mqtt = _pick_port(host, mqtt_port, 1883, "MQTT")

    async def ready(hub: Services) -> asyncio.Task[object]:
        specs = {m: hub.products.compiled(m).spec for m in state.models}
        fleet = asyncio.get_running_loop().create_task(
            run_fleet(state.fleet, specs, host=host, port=mqtt, rate_hz=rate), name="demo-fleet")
        url = hub.runtime.http_url
        console.print(f"\n[bold green]ecohub demo is running[/bold green] with {len(state.fleet)} simulated devices")
        console.print(f"  console:            [bold]{url}/console/[/bold]")
        console.print(f"    operator token:   {state.token}")
        if state.user is not None:
            console.print(f"    home user:        {state.user.email} / {state.user.password}  "
                          f"({state.user.bound} devices in \"{DEMO_HOME}\")")
            if state.user.automation:
                console.print(f"    automation:       {state.user.automation}")
        console.print(f"  API docs:           {url}/api/v1/docs")
        console.print(f"  MQTT broker:        {hub.runtime.mqtt_host}:{hub.runtime.mqtt_port}")
        if state.fleet:
            console.print(f"  try: curl -H 'Authorization: Bearer {state.token}' "
                          f"{url}/api/v1/devices/{state.fleet[0]['did']}/twin")
        console.print("Ctrl-C stops; a second run reuses the data.")
        return fleet  # stopped before the hub, so its devices leave while the broker still listens

    _run(serve_until_stopped(services, app_factory=create_app,
                             on_ready=ready, http_port=http, mqtt_port=mqtt, broker="embedded", host=host))
