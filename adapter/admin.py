"""Operator commands: the charger registry (ids, credentials, security profiles) and local id tokens.

``add_admin_parsers`` plugs the ``chargers`` and ``tokens`` commands into the adapter's own CLI; each leaf
command sets ``func``, so the CLI runs ``args.func(args)`` and exits with the int it returns: 0 done,
1 not possible with what is stored (unknown id, already exists, store unreachable), 2 invalid input.
Every command takes the server's store settings (``--store-url`` and the DocumentDB credentials given apart
from it, flag or environment variable as for ``serve``) and ``--json``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets
import sqlite3
import string
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pymongo.errors import PyMongoError

from adapter import config
from adapter.security.identity import validate_charger_id, validate_id_token
from adapter.security.passwords import hash_password
from adapter.store.base import ChargerRecord, IdTokenRecord, Store
from adapter.store.credentials import SecretUrl, with_credentials
from adapter.store.factory import open_store

TOKEN_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid")
PROFILES = (0, 1, 2, 3)
STORE_SETTINGS = ("store_url", "store_username", "store_password", "store_secret_id")
_GENERATED_LENGTH = 24
_ALPHABET = string.ascii_letters + string.digits

Subparsers = argparse._SubParsersAction  # argparse exposes no public name for it


class AdminError(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _invalid(message: str) -> AdminError:
    return AdminError(message, 2)


def _impossible(message: str) -> AdminError:
    return AdminError(message, 1)


@dataclass
class Output:
    """What a command reports: ``data`` for --json, ``text`` for people."""

    data: Any
    text: str


Handler = Callable[[argparse.Namespace, Store], Output]


# -- input checking ---------------------------------------------------------------------------------
def _checked(validate: Callable[[str], str], raw: str) -> str:
    try:
        return validate(raw)
    except ValueError as err:
        raise _invalid(str(err)) from None


def _hash(password: str) -> str:
    return _checked(hash_password, password)


def _new_password(args: argparse.Namespace, *, prompt: bool) -> tuple[str | None, bool]:
    """(password, generated?) from --password, --generate-password or, with ``prompt``, stdin."""
    if args.generate_password:
        return "".join(secrets.choice(_ALPHABET) for _ in range(_GENERATED_LENGTH)), True
    if args.password is not None or not prompt:
        return args.password, False
    if sys.stdin.isatty():
        password = getpass.getpass("New password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise _invalid("passwords do not match")
        return password, False
    return sys.stdin.readline().rstrip("\r\n"), False


def _expiry(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise _invalid(f"--expires must be an ISO-8601 date/time, e.g. 2027-01-31T23:59:59Z, not {raw!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _existing_charger(store: Store, charger_id: str) -> ChargerRecord:
    record = store.get_charger(_checked(validate_charger_id, charger_id))
    if record is None:
        raise _impossible(f"unknown charger {charger_id!r}")
    return record


def _require_password_for(profile: int, has_password: bool) -> None:
    if profile in (1, 2) and not has_password:
        raise _impossible(f"security profile {profile} needs a password: give --password or --generate-password "
                          "(or run chargers set-password first)")


# -- presentation -----------------------------------------------------------------------------------
def _charger_view(record: ChargerRecord) -> dict[str, Any]:
    view = asdict(record)
    view["has_password"] = bool(view.pop("password_hash"))
    return view


def _charger_line(record: ChargerRecord) -> str:
    seen = record.last_seen.isoformat() if record.last_seen else "-"
    return (f"{record.charger_id:<24} {record.security_profile:>7} {'yes' if record.password_hash else 'no':<8} "
            f"{record.site or '-':<16} {seen}")


def _token_line(record: IdTokenRecord) -> str:
    expires = record.expires_at.isoformat() if record.expires_at else "-"
    return f"{record.token:<36} {record.status:<9} {expires:<32} {record.parent_id or '-'}"


def _with_password(text: str, data: dict[str, Any], password: str | None, generated: bool) -> Output:
    """A generated password is shown once, here; it is not stored anywhere in clear."""
    if generated:
        data["password"] = password
        text += f"\npassword: {password}"
    return Output(data, text)


# -- chargers ---------------------------------------------------------------------------------------
def charger_add(args: argparse.Namespace, store: Store) -> Output:
    charger_id = _checked(validate_charger_id, args.charger_id)
    password, generated = _new_password(args, prompt=False)
    profile = args.profile if args.profile is not None else (0 if password is None else 1)
    _require_password_for(profile, password is not None)
    record = ChargerRecord(charger_id, password_hash=None if password is None else _hash(password),
                           security_profile=profile, site=args.site, serial=args.serial)
    if not store.create_charger(record):
        raise _impossible(f"charger {charger_id!r} already exists")
    return _with_password(f"added charger {charger_id} (security profile {profile})",
                          {"charger": _charger_view(record)}, password, generated)


def charger_list(args: argparse.Namespace, store: Store) -> Output:
    records = store.list_chargers()
    header = f"{'ID':<24} {'PROFILE':>7} {'PASSWORD':<8} {'SITE':<16} LAST SEEN"
    return Output([_charger_view(r) for r in records], "\n".join([header, *map(_charger_line, records)]))


def charger_show(args: argparse.Namespace, store: Store) -> Output:
    record = _existing_charger(store, args.charger_id)
    connections = store.list_connections(record.charger_id, limit=5)
    view = _charger_view(record)
    lines = [f"{key}: {value}" for key, value in view.items()]
    lines += ["recent connections:"] + [
        f"  {c.started_at.isoformat()} - {c.ended_at.isoformat() if c.ended_at else 'open'} "
        f"{c.remote_address or '-'} OCPP {c.ocpp_version or '?'} via {c.adapter_id} "
        f"(close {c.close_code if c.close_code is not None else '-'} {c.close_reason or ''})".rstrip()
        for c in connections
    ]
    return Output({**view, "connections": [asdict(c) for c in connections]}, "\n".join(lines))


def _removed(kind: str, key: str, remove: Callable[[str], bool]) -> Output:
    if not remove(key):
        raise _impossible(f"unknown {kind} {key!r}")
    return Output({"removed": key}, f"removed {kind} {key}")


def charger_remove(args: argparse.Namespace, store: Store) -> Output:
    return _removed("charger", _checked(validate_charger_id, args.charger_id), store.remove_charger)


def charger_set_password(args: argparse.Namespace, store: Store) -> Output:
    record = _existing_charger(store, args.charger_id)
    password, generated = _new_password(args, prompt=True)
    if not password:
        raise _invalid("no password given")
    store.update_charger(record.charger_id, password_hash=_hash(password))
    return _with_password(f"password set for charger {record.charger_id}", {"charger_id": record.charger_id},
                          password, generated)


def charger_set_profile(args: argparse.Namespace, store: Store) -> Output:
    record = _existing_charger(store, args.charger_id)
    _require_password_for(args.profile, bool(record.password_hash))
    store.update_charger(record.charger_id, security_profile=args.profile)
    return Output({"charger_id": record.charger_id, "security_profile": args.profile},
                  f"charger {record.charger_id} now uses security profile {args.profile}")


# -- tokens -----------------------------------------------------------------------------------------
def token_add(args: argparse.Namespace, store: Store) -> Output:
    record = IdTokenRecord(_checked(validate_id_token, args.token), args.status, _expiry(args.expires),
                           _checked(validate_id_token, args.parent) if args.parent else None)
    store.put_id_token(record)
    return Output(asdict(record), f"saved id token {record.token} ({record.status})")


def token_list(args: argparse.Namespace, store: Store) -> Output:
    records = store.list_id_tokens()
    header = f"{'TOKEN':<36} {'STATUS':<9} {'EXPIRES':<32} PARENT"
    return Output([asdict(r) for r in records], "\n".join([header, *map(_token_line, records)]))


def token_remove(args: argparse.Namespace, store: Store) -> Output:
    return _removed("id token", _checked(validate_id_token, args.token), store.remove_id_token)


# -- wiring -----------------------------------------------------------------------------------------
def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def _open_store(args: argparse.Namespace) -> Store:
    """Opened as the server opens it (server/app.py): DocumentDB's credentials come apart from the URL."""
    fresh_url = SecretUrl(args.store_secret_id, args.store_url) if args.store_secret_id else None
    return open_store(with_credentials(args.store_url, args.store_username, args.store_password),
                      fresh_url=fresh_url)


def _execute(handler: Handler, args: argparse.Namespace) -> Output:
    try:
        store = _open_store(args)
    except ValueError as err:
        raise _invalid(str(err)) from None
    try:
        return handler(args, store)
    finally:
        store.close()


def run(handler: Handler, args: argparse.Namespace) -> int:
    """Run one command against the store, print its result or error; returns the exit code."""
    try:
        out = _execute(handler, args)
    except AdminError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except (sqlite3.Error, PyMongoError, OSError) as err:
        print(f"error: store unavailable: {err}", file=sys.stderr)
        return 1
    print(json.dumps(out.data, indent=2, default=_json_default) if args.json else out.text)
    return 0


def _common(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    config.add_arguments(common, environ, STORE_SETTINGS)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    return common


def _password_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--password", help="the new password, 16-40 characters (visible in the process list)")
    group.add_argument("--generate-password", action="store_true",
                       help=f"generate a {_GENERATED_LENGTH}-character password and print it once")


def add_admin_parsers(subparsers: Subparsers[argparse.ArgumentParser],
                      environ: Mapping[str, str] = os.environ) -> None:
    common = _common(environ)

    def leaf(actions: Subparsers[argparse.ArgumentParser], name: str, handler: Handler,
             help_text: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, parents=[common], help=help_text, description=help_text)
        parser.set_defaults(func=partial(run, handler))
        return parser

    chargers = subparsers.add_parser("chargers", help="manage the charger registry")
    actions = chargers.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = leaf(actions, "add", charger_add, "register a charger")
    add.add_argument("charger_id", metavar="ID")
    _password_options(add)
    add.add_argument("--profile", type=int, choices=PROFILES,
                     help="OCPP security profile (default: 1 with a password, else 0)")
    add.add_argument("--site")
    add.add_argument("--serial", help="serial number; a profile 3 certificate CN may carry it instead of the id")
    leaf(actions, "list", charger_list, "list chargers")
    leaf(actions, "show", charger_show, "show one charger and its recent connections").add_argument(
        "charger_id", metavar="ID")
    leaf(actions, "remove", charger_remove, "remove a charger").add_argument("charger_id", metavar="ID")
    set_password = leaf(actions, "set-password", charger_set_password,
                        "set a charger's password (read from stdin when not given)")
    set_password.add_argument("charger_id", metavar="ID")
    _password_options(set_password)
    set_profile = leaf(actions, "set-profile", charger_set_profile, "set a charger's OCPP security profile")
    set_profile.add_argument("charger_id", metavar="ID")
    set_profile.add_argument("profile", type=int, choices=PROFILES, metavar="N", help="0, 1, 2 or 3")

    tokens = subparsers.add_parser("tokens", help="manage the local authorization list")
    actions = tokens.add_subparsers(dest="action", required=True, metavar="ACTION")
    token = leaf(actions, "add", token_add, "add or replace an id token")
    token.add_argument("token", metavar="TOKEN")
    token.add_argument("--status", choices=TOKEN_STATUSES, default="Accepted")
    token.add_argument("--expires", metavar="ISO", help="expiry, ISO-8601 (UTC unless an offset is given)")
    token.add_argument("--parent", metavar="P", help="parent / group id token")
    leaf(actions, "list", token_list, "list id tokens")
    leaf(actions, "remove", token_remove, "remove an id token").add_argument("token", metavar="TOKEN")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapter", description=__doc__)
    add_admin_parsers(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else 2
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
