"""Settings: every one is a flag and an environment variable; the flag wins."""

import argparse
import os
import socket
from pathlib import Path

import pytest

from adapter import cli, config
from adapter.cli import build_parser
from adapter.ocpp.versions import Version
from adapter.store.credentials import with_credentials


def parse(argv: list[str], environ: dict[str, str]) -> config.Settings:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser, environ)
    return config.from_namespace(parser.parse_args(argv))


def test_defaults_env_and_flags() -> None:
    assert parse([], {}).port == 9000 and parse([], {}).path_prefix == "ocpp"
    from_env = parse([], {"PORT": "9100", "STRICT": "true", "MQTT_MODE": "shared"})
    assert (from_env.port, from_env.strict, from_env.mqtt_mode) == (9100, True, "shared")
    assert parse(["--port", "9200", "--strict", "false"], {"PORT": "9100", "STRICT": "1"}).port == 9200
    assert parse(["--strict"], {}).strict is True


def test_bad_values_are_refused() -> None:
    with pytest.raises(SystemExit):
        parse(["--mqtt-mode", "sideways"], {})


def test_serve_help_documents_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = capsys.readouterr().out
    for flag, env, _default, _help in config.describe():
        assert flag in text and env in text


def test_store_credentials_join_a_mongodb_url_without_any() -> None:
    assert with_credentials("mongodb://db:27017/ocpp?tls=true", "u@x", "p/w:") == (
        "mongodb://u%40x:p%2Fw%3A@db:27017/ocpp?tls=true")
    assert with_credentials("mongodb://a:b@db/ocpp", "u", "p") == "mongodb://a:b@db/ocpp"
    assert with_credentials("sqlite:///x.db", "u", "p") == "sqlite:///x.db"


def test_rotated_credentials_replace_the_ones_in_a_url() -> None:
    assert with_credentials("mongodb://a:b@db/ocpp", "u", "n:w", replace=True) == "mongodb://u:n%3Aw@db/ocpp"
    assert with_credentials("mongodb://db/ocpp", "u", "p", replace=True) == "mongodb://u:p@db/ocpp"


def test_the_store_secret_is_named_by_the_variable_the_stack_sets() -> None:
    from infra.data import SECRET_ID_ENV

    assert parse([], {SECRET_ID_ENV: "arn:aws:secretsmanager:eu-west-1:1:secret:x"}).store_secret_id == (
        "arn:aws:secretsmanager:eu-west-1:1:secret:x")
    assert parse([], {}).store_secret_id is None


# -- environment values are checked like flags ----------------------------------------------------------
@pytest.mark.parametrize(("env", "value"), [
    ("V16_PREBOOT", "Tolerate"),  # was: silently "reject" (any value other than "tolerate")
    ("LOCAL_SHADOW", "yes"),  # was: silently off
    ("MQTT_MODE", "bogus"),
    ("AUDIT_LOG", ""),  # was: a traceback
    ("PORT", "abc"),
    ("FALLBACK_VERSION", "ocpp1.7"),
    ("FRONT_TLS_PROFILE", "3"),
    ("MAX_CHARGERS", "-1"),  # was: accepted, and then no profile 3 charger could ever connect
])
def test_a_bad_environment_value_is_refused_like_the_flag(
        capsys: pytest.CaptureFixture[str], env: str, value: str) -> None:
    flag = "--" + env.lower().replace("_", "-")
    with pytest.raises(SystemExit) as refused_flag:
        parse([flag, value], {})
    flag_error = capsys.readouterr().err.splitlines()[-1]
    with pytest.raises(SystemExit) as refused_env:
        parse([], {env: value})
    env_error = capsys.readouterr().err.splitlines()[-1]
    assert refused_flag.value.code == refused_env.value.code == 2
    assert env_error == f"{flag_error} (from environment variable {env})"


def test_environment_values_convert_like_flags() -> None:
    env = {"AUDIT_LOG": "off", "STRICT": "YES", "FRONT_TLS_PROFILE": "2", "DELEGATE_TIMEOUT": "1.5",
           "FALLBACK_VERSION": "OCPP2.0.1", "STORE_USERNAME": ""}
    flags = ["--audit-log", "off", "--strict", "YES", "--front-tls-profile", "2", "--delegate-timeout", "1.5",
             "--fallback-version", "OCPP2.0.1", "--store-username", ""]
    assert parse([], env) == parse(flags, {})
    assert parse([], env).fallback_version == "2.0.1" and parse([], env).store_username is None


def test_a_bad_environment_spares_help_and_the_admin_commands(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PORT", "abc")
    with pytest.raises(SystemExit) as helped:
        build_parser().parse_args(["serve", "--help"])
    assert helped.value.code == 0 and "PORT" in capsys.readouterr().out
    assert cli.main(["chargers", "list", "--store-url", f"sqlite:///{tmp_path}/store.db"]) == 0
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["serve"])
    assert refused.value.code == 2 and "environment variable PORT" in capsys.readouterr().err


# -- values that would only fail later ------------------------------------------------------------------
@pytest.mark.parametrize(("given", "version"), [("1.6", "1.6"), ("ocpp1.6", "1.6"), ("2.0", "2.0"),
                                                ("OCPP2.0.1", "2.0.1"), ("2.1", "2.1"), ("", None)])
def test_the_fallback_version_is_an_ocpp_version(given: str, version: str | None) -> None:
    assert parse(["--fallback-version", given], {}).fallback_version == version
    assert version is None or Version(version)


@pytest.mark.parametrize("given", ["1.7", "ocpp", "ocpp2", "16"])
def test_other_fallback_versions_are_refused(capsys: pytest.CaptureFixture[str], given: str) -> None:
    with pytest.raises(SystemExit):
        parse(["--fallback-version", given], {})
    assert "choose from 1.6, 2.0, 2.0.1, 2.1" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--rate-limit", "0"], ["--rate-limit", "-1"], ["--rate-burst", "0"],
                                  ["--rate-limit", "nan"], ["--request-timeout", "0"], ["--request-timeout", "nan"],
                                  ["--puback-timeout", "-5"], ["--handshake-timeout", "inf"],
                                  ["--delegate-timeout", "0"], ["--ping-interval", "-1"], ["--mqtt-pool-size", "0"],
                                  ["--heartbeat-interval", "0"], ["--max-message-size", "-1"]])
def test_a_rate_limit_that_would_fail_every_session_is_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse(argv, {})
    assert parse(["--rate-limit", "0.5", "--rate-burst", "1"], {}).rate_limit == 0.5
    assert parse(["--ping-interval", "0", "--ping-timeout", "0"], {}).ping_interval == 0  # 0: off


@pytest.mark.parametrize("argv", [["--tls-cert", "server.pem"], ["--tls-key", "server.key"],
                                  ["--tls-ca", "ca.pem"], ["--tls-ca", "ca.pem", "--tls-key", "server.key"]])
def test_tls_settings_without_their_partner_are_refused(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    monkeypatch.setattr("adapter.server.workers.serve", lambda settings: 0)  # what would serve plain ws://
    with pytest.raises(SystemExit) as refused:
        cli.main(["serve", *argv])
    assert refused.value.code == 2 and "--tls-cert and --tls-key" in capsys.readouterr().err
    assert cli.main(["serve", "--tls-cert", "server.pem", "--tls-key", "server.key", "--tls-ca", "ca.pem"]) == 0


def test_proxy_protocol_with_the_adapters_own_tls_is_refused(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The PROXY header comes before the TLS handshake: the adapter's TLS would fail every connection."""
    monkeypatch.setattr("adapter.server.workers.serve", lambda settings: 0)
    with pytest.raises(SystemExit) as refused:
        cli.main(["serve", "--proxy-protocol", "--tls-cert", "server.pem", "--tls-key", "server.key"])
    assert refused.value.code == 2 and "--proxy-protocol (PROXY_PROTOCOL) cannot" in capsys.readouterr().err
    assert cli.main(["serve", "--proxy-protocol"]) == 0
    assert (parse([], {}).proxy_protocol, parse([], {"PROXY_PROTOCOL": "true"}).proxy_protocol) == (False, True)


# -- documentation --------------------------------------------------------------------------------------
def test_the_adapter_id_default_is_described_not_this_machines() -> None:
    assert config.defaults().adapter_id == f"{socket.gethostname()}-{os.getpid()}"
    shown = {flag: default for flag, _env, default, _help in config.describe()}["--adapter-id"]
    assert shown == "<hostname>-<pid>"


def test_the_readme_settings_table_is_describe() -> None:
    rows = [f"| `{flag}` | `{env}` | `{default}` | {text} |" for flag, env, default, text in config.describe()]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text().splitlines()
    assert [line for line in readme if line.startswith("| `--")] == rows
