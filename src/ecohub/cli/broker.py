"""`ecohub broker config`: the nats-server config of one node of a cell's cluster, trusting this data dir's hub."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from ecohub.bootstrap import service_password
from ecohub.cli.common import DataDir, console, handle_errors, make_settings
from ecohub.connect.domain import SERVICE_USER
from ecohub.connect.nats.config import CalloutAuth, render
from ecohub.connect.plane import STORE_MEMORY, SYSTEM_USER, plane_secrets, store_limit
from ecohub.errors import ErrorCode, InvalidInput

broker_app = typer.Typer(help="The cell's NATS cluster: configs for its nodes.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach `broker`."""
    app.add_typer(broker_app, name="broker")


def parse_routes(routes: str) -> list[tuple[str, int]]:
    """`h1:6222,h2:6222` → [(h1, 6222), (h2, 6222)]: the other nodes' cluster (route) listeners."""
    out = []
    for part in routes.split(","):
        part = part.strip().removeprefix("nats-route://")
        if not part:
            continue
        host, sep, port = part.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise InvalidInput(f"--routes takes host:port[,host:port…], got {part!r}", code=ErrorCode.INVALID_BROKER)
        out.append((host, int(port)))
    return out


def cluster_block(*, name: str, host: str, port: int, routes: list[tuple[str, int]]) -> str:
    """The `cluster {}` section: this node's route listener and the others' (a full mesh, any host)."""
    listed = ", ".join(json.dumps(f"nats-route://{h}:{p}") for h, p in routes)
    return f"""
cluster {{
  name: {json.dumps(name)}
  host: {json.dumps(host)}
  port: {port}
  routes: [ {listed} ]
}}
"""


def node_config(data_dir: Path, *, node_name: str, store_dir: Path, host: str, client_port: int, mqtt_port: int,
                monitor_port: int, cluster_name: str, cluster_host: str, cluster_port: int | None,
                routes: list[tuple[str, int]], max_payload: int, store_max: int = 0) -> str:
    """The complete config text for one node (JetStream, MQTT, the callout answered by the hub of `data_dir`);
    the device account's JetStream store is bounded by `store_max` bytes (0: `store_limit`'s share of the disk
    under `store_dir`)."""
    if routes and cluster_port is None:
        raise InvalidInput("--routes needs --cluster-port (this node's own route listener)",
                           code=ErrorCode.INVALID_BROKER)
    secrets = plane_secrets(data_dir, service_password(data_dir))
    auth = CalloutAuth(issuer=secrets.issuer, service_user=SERVICE_USER, service_password=secrets.service_password,
                       system_user=SYSTEM_USER, system_password=secrets.system_password,
                       max_file=store_limit(store_dir, store_max), max_mem=STORE_MEMORY)
    clustered = cluster_port is not None
    extra = cluster_block(name=cluster_name, host=cluster_host, port=cluster_port, routes=routes) \
        if cluster_port is not None else ""
    # the $MQTT_* streams (where a PUBACKed publish is kept until ingest acks it) are R3 in a cluster: a node's
    # loss then loses nothing acknowledged (docs/nats-findings.md §5)
    return render(server_name=node_name, data_dir=store_dir, host=host, client_port=client_port,
                  monitor_port=monitor_port, mqtt_port=mqtt_port, max_payload=max_payload, auth=auth,
                  mqtt_stream_replicas=3 if clustered else 0, extra=extra)


@broker_app.command("config")
@handle_errors
def config(data_dir: Path | None = DataDir,
           node_name: str = typer.Option("ecohub-n0", "--node-name", help="this node's server_name (unique)"),
           cluster_port: int | None = typer.Option(None, "--cluster-port", help="this node's route listener"),
           routes: str = typer.Option("", "--routes", help="the other nodes' route listeners: h:p,h:p"),
           cluster_name: str = typer.Option("ecohub", "--cluster-name", help="the same on every node of the cell"),
           mqtt_port: int = typer.Option(1883, "--mqtt-port", help="devices connect here"),
           client_port: int = typer.Option(4222, "--client-port", help="the hub's processes connect here"),
           monitor_port: int = typer.Option(8222, "--monitor-port", help="/healthz, /varz"),
           host: str = typer.Option("0.0.0.0", "--host", help="listen address of the client, MQTT and monitor ports"),
           cluster_host: str = typer.Option("0.0.0.0", "--cluster-host", help="listen address of the route port"),
           store_dir: Path | None = typer.Option(None, "--store-dir", help="JetStream files (default: "
                                                 "<data dir>/nats-<node name>)"),
           output: Path | None = typer.Option(None, "--output", "-o", help="write to FILE (mode 0600) instead of "
                                              "printing")) -> None:
    """Print a nats-server config for one node of the cell's cluster whose auth callout this hub answers.

    The config holds the hub's service and system passwords: keep it 0600 (it is, with --output)."""
    settings = make_settings(data_dir, create=True)  # the first command of a cell: its secrets are made here
    store = (store_dir or settings.data_dir / f"nats-{node_name}").resolve()
    text = node_config(settings.data_dir, node_name=node_name, store_dir=store, host=host,
                       client_port=client_port, mqtt_port=mqtt_port, monitor_port=monitor_port,
                       cluster_name=cluster_name, cluster_host=cluster_host, cluster_port=cluster_port,
                       routes=parse_routes(routes), max_payload=settings.mqtt.broker_max_payload,
                       store_max=settings.mqtt.broker_store_max)
    store.mkdir(parents=True, exist_ok=True)  # the server writes its pid file there and will not create it
    if output is None:
        print(text.strip())
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text.strip() + "\n")
    console.print(f"wrote {output} (node {node_name}); start it with: nats-server -c {output}")
