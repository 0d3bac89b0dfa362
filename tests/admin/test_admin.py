"""The admin CLI, driven through ``adapter.admin.main`` against an embedded store file."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from adapter import admin
from adapter.security.passwords import verify_password
from adapter.store.base import ConnectionRecord
from adapter.store.credentials import SecretUrl
from adapter.store.factory import open_store

PASSWORD = "sixteen-chars-ok!"


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path}/admin.db"


@pytest.fixture
def cli(url, capsys):
    """``cli(*argv)`` -> (exit code, stdout, stderr), always against the test store."""

    def run(*argv: str) -> tuple[int, str, str]:
        code = admin.main([*argv, "--store-url", url])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def stored(url, charger_id):
    store = open_store(url)
    try:
        return store.get_charger(charger_id)
    finally:
        store.close()


# -- chargers add -----------------------------------------------------------------------------------
def test_add_with_password_defaults_to_profile_1_and_never_prints_secrets(cli, url):
    code, out, _ = cli("chargers", "add", "CP-1", "--password", PASSWORD, "--site", "depot", "--serial", "SN-1")
    assert (code, out) == (0, "added charger CP-1 (security profile 1)\n")
    record = stored(url, "CP-1")
    assert (record.security_profile, record.site, record.serial) == (1, "depot", "SN-1")
    assert verify_password(record.password_hash, PASSWORD)

    code, out, _ = cli("chargers", "show", "CP-1", "--json")
    shown = json.loads(out)
    assert (code, shown["has_password"], shown["security_profile"]) == (0, True, 1)
    assert "password_hash" not in shown and PASSWORD not in out and "argon2" not in out


def test_add_without_password_is_profile_0(cli, url):
    assert cli("chargers", "add", "CP-0")[0] == 0
    assert stored(url, "CP-0").security_profile == 0


def test_generated_password_is_printed_once_and_works(cli, url):
    code, out, _ = cli("chargers", "add", "CP-1", "--generate-password", "--profile", "2", "--json")
    result = json.loads(out)
    assert code == 0 and result["charger"]["security_profile"] == 2
    assert len(result["password"]) == 24
    assert verify_password(stored(url, "CP-1").password_hash, result["password"])


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["bad/id"], 2, "charger id contains '/'"),
    (["CP-1", "--password", "too-short"], 2, "password must be 16-40 characters (OCPP), got 9"),
    (["CP-1", "--profile", "2"], 1, "security profile 2 needs a password"),
    (["CP-1", "--profile", "5"], 2, "invalid choice: 5"),
    (["CP-1", "--password", "x" * 16, "--generate-password"], 2, "not allowed with argument"),
])
def test_add_refuses_bad_input(cli, url, argv, code, message):
    result = cli("chargers", "add", *argv)
    assert result[0] == code and message in result[2]
    assert result[1] == ""
    assert stored(url, "CP-1") is None


def test_add_refuses_an_existing_charger(cli, url):
    cli("chargers", "add", "CP-1", "--password", PASSWORD)
    assert cli("chargers", "add", "CP-1") == (1, "", "error: charger 'CP-1' already exists\n")
    assert stored(url, "CP-1").security_profile == 1


# -- list, show, remove -----------------------------------------------------------------------------
def test_list_text_and_json(cli):
    cli("chargers", "add", "CP-B", "--password", PASSWORD, "--site", "north")
    cli("chargers", "add", "CP-A")
    code, out, _ = cli("chargers", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["ID", "PROFILE", "PASSWORD", "SITE", "LAST", "SEEN"]
    assert [line.split()[:4] for line in lines[1:]] == [["CP-A", "0", "no", "-"], ["CP-B", "1", "yes", "north"]]
    listed = json.loads(cli("chargers", "list", "--json")[1])
    assert [(c["charger_id"], c["has_password"]) for c in listed] == [("CP-A", False), ("CP-B", True)]


def test_show_includes_recent_connections(cli, url):
    cli("chargers", "add", "CP-1")
    store = open_store(url)
    store.record_connection(ConnectionRecord("c1", "CP-1", datetime(2026, 5, 1, tzinfo=UTC), "10.0.0.9", "2.0.1",
                                             "adapter-1"))
    store.close_connection("c1", datetime(2026, 5, 1, 1, tzinfo=UTC), 1000, "bye")
    store.close()
    code, out, _ = cli("chargers", "show", "CP-1")
    assert code == 0 and "charger_id: CP-1" in out
    assert ("2026-05-01T00:00:00+00:00 - 2026-05-01T01:00:00+00:00 10.0.0.9 OCPP 2.0.1 via adapter-1 "
            "(close 1000 bye)") in out
    connections = json.loads(cli("chargers", "show", "CP-1", "--json")[1])["connections"]
    assert connections[0]["started_at"] == "2026-05-01T00:00:00+00:00"


@pytest.mark.parametrize("action", [["show", "CP-9"], ["remove", "CP-9"], ["set-password", "CP-9"],
                                    ["set-profile", "CP-9", "1"]])
def test_unknown_charger_exits_1(cli, action):
    assert cli("chargers", *action) == (1, "", "error: unknown charger 'CP-9'\n")


def test_remove(cli, url):
    cli("chargers", "add", "CP-1")
    assert cli("chargers", "remove", "CP-1", "--json") == (0, '{\n  "removed": "CP-1"\n}\n', "")
    assert stored(url, "CP-1") is None


# -- set-password, set-profile ----------------------------------------------------------------------
def test_set_password_from_option(cli, url):
    cli("chargers", "add", "CP-1")
    assert cli("chargers", "set-password", "CP-1", "--password", PASSWORD)[:2] == (
        0, "password set for charger CP-1\n")
    assert verify_password(stored(url, "CP-1").password_hash, PASSWORD)


def test_set_password_reads_a_pipe(cli, url, monkeypatch):
    cli("chargers", "add", "CP-1")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli("chargers", "set-password", "CP-1")[0] == 0
    assert verify_password(stored(url, "CP-1").password_hash, PASSWORD)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("typed", "code"), [([PASSWORD, PASSWORD], 0), ([PASSWORD, PASSWORD + "x"], 2)])
def test_set_password_prompts_on_a_terminal(cli, url, monkeypatch, typed, code):
    cli("chargers", "add", "CP-1")
    answers = iter(typed)
    monkeypatch.setattr("sys.stdin", Tty())
    monkeypatch.setattr(admin.getpass, "getpass", lambda prompt: next(answers))
    result = cli("chargers", "set-password", "CP-1")
    assert result[0] == code
    assert (stored(url, "CP-1").password_hash is not None) == (code == 0)
    if code:
        assert result[2] == "error: passwords do not match\n"


@pytest.mark.parametrize(("stdin", "message"), [("", "no password given"), ("short\n", "16-40 characters")])
def test_set_password_refuses_bad_passwords(cli, monkeypatch, stdin, message):
    cli("chargers", "add", "CP-1")
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code, _, err = cli("chargers", "set-password", "CP-1")
    assert code == 2 and message in err


def test_set_profile(cli, url):
    cli("chargers", "add", "CP-1")
    assert cli("chargers", "set-profile", "CP-1", "3")[0] == 0
    assert stored(url, "CP-1").security_profile == 3
    code, _, err = cli("chargers", "set-profile", "CP-1", "2")
    assert code == 1 and "security profile 2 needs a password" in err
    cli("chargers", "set-password", "CP-1", "--password", PASSWORD)
    assert json.loads(cli("chargers", "set-profile", "CP-1", "2", "--json")[1]) == {
        "charger_id": "CP-1", "security_profile": 2}
    assert cli("chargers", "set-profile", "CP-1", "4")[0] == 2


# -- tokens -----------------------------------------------------------------------------------------
def test_tokens_add_list_remove(cli):
    assert cli("tokens", "add", "TAG-1")[:2] == (0, "saved id token TAG-1 (Accepted)\n")
    assert cli("tokens", "add", "TAG-2", "--status", "Blocked", "--expires", "2027-01-31T23:59:59Z",
               "--parent", "FLEET")[0] == 0
    assert cli("tokens", "add", "TAG-3", "--expires", "2027-02-01T08:00:00")[0] == 0  # naive: UTC
    listed = json.loads(cli("tokens", "list", "--json")[1])
    assert listed == [
        {"token": "TAG-1", "status": "Accepted", "expires_at": None, "parent_id": None},
        {"token": "TAG-2", "status": "Blocked", "expires_at": "2027-01-31T23:59:59+00:00", "parent_id": "FLEET"},
        {"token": "TAG-3", "status": "Accepted", "expires_at": "2027-02-01T08:00:00+00:00", "parent_id": None},
    ]
    text = cli("tokens", "list")[1].splitlines()
    assert text[2].split() == ["TAG-2", "Blocked", "2027-01-31T23:59:59+00:00", "FLEET"]
    assert cli("tokens", "remove", "TAG-1")[:2] == (0, "removed id token TAG-1\n")
    assert cli("tokens", "remove", "TAG-1") == (1, "", "error: unknown id token 'TAG-1'\n")


@pytest.mark.parametrize(("argv", "message"), [
    (["add", "TAG 1"], "id token contains ' '"),
    (["add", "T" * 37], "at most 36"),
    (["add", "TAG", "--status", "Maybe"], "invalid choice: 'Maybe'"),
    (["add", "TAG", "--expires", "next tuesday"], "--expires must be an ISO-8601 date/time"),
    (["add", "TAG", "--parent", "bad parent"], "id token contains ' '"),
])
def test_tokens_refuse_bad_input(cli, argv, message):
    code, _, err = cli("tokens", *argv)
    assert code == 2 and message in err


# -- store selection --------------------------------------------------------------------------------
def test_store_url_comes_from_env_when_not_given(url, monkeypatch, capsys):
    monkeypatch.setenv("STORE_URL", url)
    assert admin.main(["chargers", "add", "CP-ENV"]) == 0
    assert stored(url, "CP-ENV") is not None


def test_store_credentials_come_apart_from_the_url_as_for_the_server(monkeypatch, capsys):
    """DocumentDB: STORE_URL has no credentials; they, and the secret to re-read them from, come apart."""
    monkeypatch.setenv("STORE_URL", "mongodb://docdb:27017/ocpp?tls=true")
    monkeypatch.setenv("STORE_USERNAME", "admin")
    monkeypatch.setenv("STORE_PASSWORD", "p@ss:word")
    monkeypatch.setenv("STORE_SECRET_ID", "arn:aws:secretsmanager:eu-west-1:1:secret:db")
    opened = []

    def fake_open_store(url, *, fresh_url=None):
        opened.append((url, fresh_url))
        return open_store("memory://")

    monkeypatch.setattr(admin, "open_store", fake_open_store)
    assert admin.main(["chargers", "list", "--json"]) == 0
    [(url, fresh_url)] = opened
    assert url == "mongodb://admin:p%40ss%3Aword@docdb:27017/ocpp?tls=true"
    assert isinstance(fresh_url, SecretUrl) and fresh_url.secret_id == "arn:aws:secretsmanager:eu-west-1:1:secret:db"


@pytest.mark.parametrize(("store_url", "code", "message"), [
    ("redis://h", 2, "unsupported store URL"),
    ("sqlite:///{tmp}", 1, "store unavailable"),  # a directory, not a database file
])
def test_unusable_store_is_a_clear_error(capsys, tmp_path, store_url, code, message):
    assert admin.main(["chargers", "list", "--store-url", store_url.format(tmp=tmp_path)]) == code
    assert message in capsys.readouterr().err


def test_help_and_missing_command(capsys):
    assert admin.main(["--help"]) == 0
    assert "chargers" in capsys.readouterr().out
    assert admin.main([]) == 2
    assert admin.main(["chargers"]) == 2
