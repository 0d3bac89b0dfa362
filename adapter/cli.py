"""``python -m adapter``: serve, run-local, and the admin commands (chargers, tokens)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from urllib.parse import urlsplit

from adapter import config, logs
from adapter.admin import add_admin_parsers
from adapter.local_broker import listening, start_mosquitto

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m adapter",
                                     description="OCPP 1.6/2.0/2.0.1/2.1 WebSocket to MQTT gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("serve", "run the adapter"),
                       ("run-local", "run the adapter on embedded defaults, starting a local Mosquitto if "
                                     "none listens on the MQTT URL's port")):
        command = sub.add_parser(name, help=text, description=text)
        config.add_arguments(command, os.environ)
    add_admin_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from adapter.server.workers import serve

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in ("serve", "run-local"):
        return int(args.func(args))
    try:
        settings = config.from_namespace(args)
    except ValueError as err:
        parser.error(str(err))
    logs.configure(settings.log_level)
    if args.command == "serve":
        return serve(settings)
    url = urlsplit(settings.mqtt_url)
    broker = None
    if url.scheme == "mqtt" and url.hostname in ("127.0.0.1", "localhost") and not listening(
            "127.0.0.1", url.port or 1883):
        log.info("starting a local mosquitto", extra={"port": url.port or 1883})
        broker = start_mosquitto(url.port or 1883)
    try:
        return serve(dataclasses.replace(settings, local_shadow="on" if settings.local_shadow == "auto"
                                         else settings.local_shadow))
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    sys.exit(main())
