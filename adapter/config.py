"""Every setting of ``python -m adapter serve``, defined once: each is a flag and an environment variable."""

from __future__ import annotations

import argparse
import math
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from adapter.ocpp.versions import Version

OCPP_VERSIONS = tuple(v.value for v in Version)


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _optional_str(text: str) -> str | None:
    return text or None


def _optional_int(text: str) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None


def _front_tls_profile(text: str) -> int | None:
    if text not in ("", "2"):
        raise argparse.ArgumentTypeError(f"only 2 (or empty) is possible, got {text!r}: a front that terminates "
                                         "TLS passes no client certificate, so profile 3 needs TLS in the adapter")
    return _optional_int(text)


def _ocpp_version(text: str) -> str | None:
    """A version as the handshake names it ("1.6") or as its subprotocol ("ocpp1.6"); empty: none."""
    return text.strip().lower().removeprefix("ocpp") if text else None


def _positive(number: type[int] | type[float], *, zero: bool = False) -> Callable[[str], Any]:
    """For a setting whose 0, negative or non-finite value would not mean "off" but break every session (the
    rate limiter refuses it, a NaN deadline never passes); ``zero``: 0 is allowed and means what its help says
    ("off", "derive it")."""

    def positive(text: str) -> Any:
        try:
            value = number(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {number.__name__} value: {text!r}") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(f"must be {'0 or more' if zero else 'more than 0'}, got {text!r}")
        return value

    return positive


def _meta(default: Any, help: str, convert: Callable[[str], Any] = str,
          choices: tuple[str, ...] | None = None, shown: str | None = None) -> Any:
    """``shown``: how docs describe a default computed on each machine."""
    return {"default": default, "help": help, "convert": convert, "choices": choices,
            "shown": shown if shown is not None else repr(default)}


@dataclass(frozen=True)
class Settings:
    """Field metadata (not defaults) drives the CLI: see ``_OPTIONS``."""

    host: str
    port: int
    path_prefix: str
    workers: int
    mqtt_url: str
    mqtt_mode: str
    mqtt_pool_size: int
    mqtt_ca_file: str | None
    mqtt_cert_file: str | None
    mqtt_key_file: str | None
    local_shadow: str
    store_url: str
    store_username: str | None
    store_password: str | None
    store_secret_id: str | None
    audit_log: bool
    audit_ttl: int
    log_level: str
    strict: bool
    adapter_id: str
    registration: str
    heartbeat_interval: int
    boot_policy: str
    auth_policy: str
    delegate_data_transfer: bool
    delegate_timeout: float
    v16_preboot: str
    fallback_version: str | None
    request_timeout: float
    request_queue_limit: int
    puback_timeout: float
    billing_outbox: bool
    ping_interval: float
    ping_timeout: float
    handshake_timeout: float
    idle_timeout: float
    max_message_size: int
    rate_limit: float
    rate_burst: int
    max_pending_handshakes: int
    max_chargers: int
    listen_backlog: int
    tls_cert: str | None
    tls_key: str | None
    tls_ca: str | None
    front_tls_profile: int | None
    proxy_protocol: bool
    emf_metrics: bool
    iot_provisioning: bool
    aws_region: str | None


_OPTIONS: dict[str, dict[str, Any]] = {
    "host": _meta("0.0.0.0", "address to listen on for chargers"),
    "port": _meta(9000, "port for OCPP WebSockets and the /healthz, /readyz, /metrics endpoints", int),
    "path_prefix": _meta("ocpp", "URL path prefix: chargers connect to /{prefix}/{charge_point_id}"),
    "workers": _meta(1, "worker processes sharing the port (SO_REUSEPORT); one uses one core", int),
    "mqtt_url": _meta("mqtt://127.0.0.1:1883", "broker: mqtt://host:port, mqtts://host:port (TLS, mTLS with "
                      "cert/key files) or wss-sigv4://<iot-endpoint>?region=R (AWS IoT Core, SigV4)"),
    "mqtt_mode": _meta("per-charger", "per-charger: one MQTT connection per charger (client id = charger id); "
                       "shared: a small pool for all chargers", choices=("per-charger", "shared")),
    "mqtt_pool_size": _meta(4, "MQTT connections in shared mode (on AWS IoT Core each carries at most 100 msg/s "
                                 "and 16 chargers: use per-charger mode there)", _positive(int)),
    "mqtt_ca_file": _meta(None, "CA bundle to verify the broker (mqtts)", _optional_str),
    "mqtt_cert_file": _meta(None, "client certificate for mutual TLS to the broker", _optional_str),
    "mqtt_key_file": _meta(None, "client private key for mutual TLS to the broker", _optional_str),
    "local_shadow": _meta("auto", "run the local device-shadow stand-in (auto: on for plain mqtt:// brokers)",
                          choices=("auto", "on", "off")),
    "store_url": _meta("sqlite:///var/ocpp-gateway.db", "state store: mongodb://... or sqlite:///path"),
    "store_username": _meta(None, "MongoDB user, if not in the URL (DocumentDB secrets are injected this way)",
                            _optional_str),
    "store_password": _meta(None, "MongoDB password, if not in the URL; never logged", _optional_str),
    "store_secret_id": _meta(None, "Secrets Manager secret (name or ARN) to re-read MongoDB credentials from "
                             "when the server refuses them, as after a rotation: DocumentDB's JSON "
                             "(username, password) or a whole mongodb:// URI", _optional_str),
    "audit_log": _meta(True, "keep an audit log of every frame in the store", _bool),
    "audit_ttl": _meta(7 * 86400, "seconds the audit log keeps a frame", _positive(int)),
    "log_level": _meta("info", "log level", choices=("debug", "info", "warning", "error")),
    "strict": _meta(False, "reject every schema violation (certification) instead of normalizing", _bool),
    "adapter_id": _meta(f"{socket.gethostname()}-{os.getpid()}", "this instance's id in events and sessions",
                        shown="<hostname>-<pid>"),
    "registration": _meta("open", "open: register unknown chargers; known: refuse them with HTTP 404",
                          choices=("open", "known")),
    "heartbeat_interval": _meta(300, "heartbeat interval (s) given to chargers in BootNotification", _positive(int)),
    "boot_policy": _meta("accept", "answer to BootNotification", choices=("accept", "pending", "reject")),
    "auth_policy": _meta("accept-all", "token decisions: accept-all, the local list, or delegate to the back "
                         "end over MQTT (local list as fallback)", choices=("accept-all", "local", "delegate")),
    "delegate_data_transfer": _meta(False, "ask the back end to answer DataTransfer (else UnknownVendorId)",
                                    _bool),
    "delegate_timeout": _meta(2.0, "deadline (s) for back-end answers to delegated requests", _positive(float)),
    "v16_preboot": _meta("tolerate", "OCPP 1.6 messages before an accepted boot: tolerate or reject",
                         choices=("tolerate", "reject")),
    "fallback_version": _meta(None, "OCPP version for chargers that offer no subprotocol: 1.6, 2.0, 2.0.1 or 2.1 "
                              "(ocpp1.6 etc. as well)", _ocpp_version, choices=OCPP_VERSIONS),
    "request_timeout": _meta(30.0, "deadline (s) for a back-end request, queueing included", _positive(float)),
    "request_queue_limit": _meta(32, "back-end requests queued per charger before refusing", _positive(int)),
    "puback_timeout": _meta(5.0, "wait (s) for the broker's PUBACK of billing events before the outbox",
                            _positive(float)),
    "billing_outbox": _meta(True, "write billing events the broker did not PUBACK in time to the durable outbox "
                            "and acknowledge them (off: leave them unanswered so the charger retries)", _bool),
    "ping_interval": _meta(30.0, "WebSocket ping interval (s); 0 disables", _positive(float, zero=True)),
    "ping_timeout": _meta(30.0, "close when a pong is this late (s); 0: never", _positive(float, zero=True)),
    "handshake_timeout": _meta(10.0, "WebSocket opening handshake timeout (s)", _positive(float)),
    "idle_timeout": _meta(900.0, "close a session with no message from the charger for this long (s); 0 off",
                          float),
    "max_message_size": _meta(65536, "largest accepted WebSocket message (bytes); its event can be 1.4 times as "
                                      "large, and AWS IoT Core takes at most 128 KB", _positive(int)),
    "rate_limit": _meta(50.0, "messages per second a charger may send (sustained); more than 0", _positive(float)),
    "rate_burst": _meta(200, "messages a charger may send in a burst; at least 1", _positive(int)),
    "max_pending_handshakes": _meta(256, "concurrent unauthenticated handshakes", _positive(int)),
    "max_chargers": _meta(0, "chargers one process holds; more are refused with 503 and Retry-After (0: as many as "
                          "its open-file limit allows, 2 files each in per-charger mode)", _positive(int, zero=True),
                          shown="0 (from the open-file limit)"),
    "listen_backlog": _meta(4096, "connections the kernel queues until the adapter accepts them (capped by "
                            "net.core.somaxconn); a reconnect storm overflowing a short queue costs chargers "
                            "1-3 s SYN retries or failed connects", int),
    "tls_cert": _meta(None, "server certificate (PEM): serve wss:// (security profiles 2 and 3); needs "
                      "--tls-key", _optional_str),
    "tls_key": _meta(None, "server private key (PEM); needs --tls-cert", _optional_str),
    "tls_ca": _meta(None, "CA for charger client certificates (profile 3, mutual TLS); needs --tls-cert and "
                    "--tls-key", _optional_str),
    "front_tls_profile": _meta(None, "2 when a TLS-terminating front (NLB) enforces TLS; profile 3 chargers "
                               "need TLS in the adapter",
                               _front_tls_profile),
    "proxy_protocol": _meta(False, "expect a PROXY protocol header (v2 as an AWS NLB sends it, or v1) first on "
                            "every connection and take the client's address from it; a connection without one is "
                            "closed unanswered. Only behind a front that always sends it (the header is trusted); "
                            "not with --tls-cert", _bool),
    "emf_metrics": _meta(False, "write CloudWatch Embedded Metric Format lines to stdout", _bool),
    "iot_provisioning": _meta(False, "create an IoT Core thing for each charger on its first successful "
                              "connection; its type and group from the vendor/model its boot reports", _bool),
    "aws_region": _meta(None, "AWS region for IoT provisioning (default: the SDK's own lookup)", _optional_str),
}

assert set(_OPTIONS) == {f.name for f in fields(Settings)}, "every setting needs its option"


def env_name(name: str) -> str:
    return name.upper()


class _FromEnv(str):
    """An environment value given to argparse as the option's default: argparse converts a string default
    with the option's ``type``, only when the flag is absent and only for the command being run (so --help
    and the admin commands never trip over a bad serve setting)."""


def _converter(name: str, meta: dict[str, Any]) -> Callable[[str], Any]:
    """The option's ``type``: one check for a flag's and an environment value, choices included (argparse
    checks choices only for flags), and an error that names the variable a bad value came from."""
    convert, choices, env = meta["convert"], meta["choices"], env_name(name)

    def converted(text: str) -> Any:
        try:
            value = convert(str(text))  # a plain str: settings never hold a _FromEnv
        except argparse.ArgumentTypeError as err:
            problem = str(err)
        except (TypeError, ValueError):
            problem = f"invalid {getattr(convert, '__name__', 'value')} value: {text!r}"
        else:
            if value is None or not choices or value in choices:
                return value
            problem = f"invalid choice: {text!r} (choose from {', '.join(choices)})"
        origin = f" (from environment variable {env})" if isinstance(text, _FromEnv) else ""
        raise argparse.ArgumentTypeError(problem + origin)

    return converted


def add_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str],
                  names: Iterable[str] = _OPTIONS) -> None:
    for name in names:
        meta, env = _OPTIONS[name], env_name(name)
        kwargs: dict[str, Any] = {"default": _FromEnv(environ[env]) if env in environ else meta["default"],
                                  "dest": name, "type": _converter(name, meta),
                                  "help": f"{meta['help']} [env {env}; default {meta['shown']}]"}
        if meta["choices"]:  # only shown: argparse's own check would refuse None (fallback version unset)
            kwargs["metavar"] = "{" + ",".join(meta["choices"]) + "}"
        if meta["convert"] is _bool:
            kwargs["nargs"] = "?"
            kwargs["const"] = True
        parser.add_argument(f"--{name.replace('_', '-')}", **kwargs)


def _check_together(settings: Settings) -> None:
    """TLS settings only work together: one alone would be ignored and the adapter serve plain ws://. A PROXY
    header arrives before the TLS ClientHello, which asyncio's TLS layer would read first and fail on."""
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ValueError("--tls-cert and --tls-key (TLS_CERT, TLS_KEY) are needed together to serve wss://")
    if settings.tls_ca and not settings.tls_cert:
        raise ValueError("--tls-ca (TLS_CA) needs --tls-cert and --tls-key: client certificates need wss://")
    if settings.proxy_protocol and settings.tls_cert:
        raise ValueError("--proxy-protocol (PROXY_PROTOCOL) cannot be combined with --tls-cert (TLS_CERT): the "
                         "PROXY header comes before the TLS handshake, which the adapter's own TLS cannot read "
                         "past; terminate TLS at the front (an NLB TLS listener) instead")


def from_namespace(ns: argparse.Namespace) -> Settings:
    """Raises ValueError for settings given without those they need."""
    settings = Settings(**{f.name: getattr(ns, f.name) for f in fields(Settings)})
    _check_together(settings)
    return settings


def defaults(**overrides: Any) -> Settings:
    values = {name: meta["default"] for name, meta in _OPTIONS.items()}
    values.update(overrides)
    return Settings(**values)


def describe() -> list[tuple[str, str, str, str]]:
    """(flag, env, default, help) rows for the README's settings table."""
    return [(f"--{n.replace('_', '-')}", env_name(n), m["shown"], m["help"]) for n, m in _OPTIONS.items()]
