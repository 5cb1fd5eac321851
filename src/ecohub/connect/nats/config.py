"""Rendering of nats-server configuration files (server, auth callout accounts, cluster)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

DEVICE_ACCOUNT = "ECOHUB"
SYSTEM_ACCOUNT = "SYS"


@dataclass(frozen=True)
class CalloutAuth:
    """Accounts and the auth_callout block: static service + system users, every other user goes to the callout."""

    issuer: str  # public account nkey (A...) whose seed signs callout responses and user JWTs
    service_user: str = "ecohub-svc"
    service_password: str = "svc-secret"
    system_user: str = "ecohub-sys"
    system_password: str = "sys-secret"
    account: str = DEVICE_ACCOUNT
    # how long the server waits for the callout's answer (and a plain client for its CONNECT): 2 s, the default,
    # left a responder on a loaded machine no headroom in a reconnect storm (answers arrived expired: CONNACK 5)
    timeout_s: float = 5.0
    # JetStream limits of the device account (0: none). Every acknowledged QoS 1 publish waits in `$MQTT_msgs` until
    # ingest acks it, so with ingest down the stream grows; at `max_file` the server refuses the next QoS 1 publish
    # (no PUBACK, the connection is closed) instead of filling the disk, and keeps everything it acknowledged
    max_file: int = 0
    max_mem: int = 0


@dataclass(frozen=True)
class ClusterSpec:
    """Route settings for one node of a static cluster."""

    name: str
    port: int
    routes: tuple[int, ...] = field(default_factory=tuple)
    host: str = "127.0.0.1"


def _q(value: str) -> str:
    """A quoted config string (the config format accepts JSON strings)."""
    return json.dumps(value)


def auth_block(auth: CalloutAuth) -> str:
    """The accounts / system_account / authorization section for auth callout in server-config mode."""
    limits = [f"max_file: {auth.max_file}"] if auth.max_file else []
    limits += [f"max_mem: {auth.max_mem}"] if auth.max_mem else []
    jetstream = f"{{ {', '.join(limits)} }}" if limits else "enabled"
    return f"""
accounts {{
  {auth.account} {{
    jetstream: {jetstream}
    users: [ {{ user: {_q(auth.service_user)}, password: {_q(auth.service_password)} }} ]
  }}
  {SYSTEM_ACCOUNT} {{
    users: [ {{ user: {_q(auth.system_user)}, password: {_q(auth.system_password)} }} ]
  }}
}}
system_account: {SYSTEM_ACCOUNT}
authorization {{
  timeout: {auth.timeout_s}
  auth_callout {{
    issuer: {_q(auth.issuer)}
    account: {auth.account}
    auth_users: [ {_q(auth.service_user)}, {_q(auth.system_user)} ]
  }}
}}
"""


def render(
    *,
    server_name: str,
    data_dir: Path,
    host: str,
    client_port: int,
    monitor_port: int,
    mqtt_port: int,
    max_payload: int,
    auth: CalloutAuth | None = None,
    cluster: ClusterSpec | None = None,
    mqtt_stream_replicas: int = 0,
    sync_interval: str = "",
    extra: str = "",
) -> str:
    """A complete nats-server config for one node."""
    # store_dir: the server appends /jetstream itself
    sync = f"\n  sync_interval: {sync_interval}" if sync_interval else ""
    mqtt_extra = f"\n  stream_replicas: {mqtt_stream_replicas}" if mqtt_stream_replicas else ""
    text = f"""
server_name: {_q(server_name)}
host: {_q(host)}
port: {client_port}
http: {_q(f"{host}:{monitor_port}")}
pid_file: {_q(str(data_dir / "nats-server.pid"))}
max_payload: {max_payload}
logtime_utc: true
jetstream {{
  store_dir: {_q(str(data_dir))}{sync}
  # every device's QoS 1 subscription to its `down` topic is one consumer of $MQTT_msgs: nats-server 2.15
  # caps a stream at 1,000 by default, which refused the 1,000th device's SUBACK (measured: bench/connections.py)
  limits {{ default_max_consumers: -1 }}
}}
mqtt {{
  host: {_q(host)}
  port: {mqtt_port}{mqtt_extra}
}}
"""
    if cluster is not None:
        routes = ", ".join(_q(f"nats-route://{cluster.host}:{p}") for p in cluster.routes)
        text += f"""
cluster {{
  name: {_q(cluster.name)}
  host: {_q(cluster.host)}
  port: {cluster.port}
  routes: [ {routes} ]
}}
"""
    if auth is not None:
        text += auth_block(auth)
    return text + extra
