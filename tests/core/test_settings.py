"""Settings: every one is a flag and an environment variable; the flag wins."""

import argparse

import pytest

from adapter import config
from adapter.cli import build_parser
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
