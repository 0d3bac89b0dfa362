"""TopicHandlers: MQTT filter semantics (exact, +, #, $share) with handlers found by prefix, not by scan."""

from __future__ import annotations

import pytest

from adapter.bus.topic_handlers import MessageHandler, TopicHandlers, topic_matches


def named(name: str) -> MessageHandler:
    def handler(topic: str, payload: bytes) -> None:
        raise AssertionError("never called")
    handler.__name__ = name
    return handler


@pytest.mark.parametrize(("topic_filter", "topic", "matches"), [
    ("a/b", "a/b", True), ("a/+", "a/b", True), ("a/+", "a/b/c", False), ("a/#", "a", True),
    ("a/#", "a/b/c", True), ("#", "x/y", True), ("+/b", "a/b", True), ("a/+/c", "a//c", True),
    ("/devices/lifecycle/+", "/devices/lifecycle/cp1", True), ("/devices/lifecycle/+", "devices/lifecycle/cp1", False),
    ("$share/g/req/v1/+/#", "req/v1/cp1/ns/r1/Reset", True), ("$share/g/req/v1/+/#", "res/v1/cp1/ns/r1/Reset", False),
])
def test_filter_semantics_agree_between_the_matcher_and_the_index(topic_filter: str, topic: str,
                                                                  matches: bool) -> None:
    handlers = TopicHandlers()
    handlers.update({topic_filter: named("h")})
    assert topic_matches(topic_filter, topic) is matches
    assert (handlers.match(topic) is not None) is matches


def test_thousands_of_chargers_each_get_their_own_requests() -> None:
    handlers = TopicHandlers()
    for n in range(5_000):
        handlers.update({f"req/v1/cp{n}/#": named(f"req{n}"), f"$aws/things/cp{n}/shadow/update/delta": named(f"d{n}"),
                         f"delegate/v1/cp{n}/+": named(f"del{n}")})
    assert len(handlers) == 15_000
    assert _name(handlers.match("req/v1/cp4321/DEFAULT/r-1/Reset")) == "req4321"
    assert _name(handlers.match("req/v1/cp4321")) == "req4321"  # '#' also matches its parent level
    assert _name(handlers.match("$aws/things/cp7/shadow/update/delta")) == "d7"
    assert _name(handlers.match("delegate/v1/cp99/Authorize")) == "del99"
    assert handlers.match("delegate/v1/cp99/Authorize/extra") is None
    assert handlers.match("req/v1/cp5000/DEFAULT/r-1/Reset") is None


def test_the_exact_filter_wins_then_the_longest_literal_prefix_and_removal_is_clean() -> None:
    handlers = TopicHandlers()
    handlers.update({"a/#": named("any"), "a/b/+": named("ab"), "a/b/c": named("exact")})
    assert _name(handlers.match("a/b/c")) == "exact"
    assert _name(handlers.match("a/b/d")) == "ab"
    assert _name(handlers.match("a/x")) == "any"
    assert handlers.pop("a/b/+") is not None and handlers.pop("a/b/+") is None
    assert _name(handlers.match("a/b/d")) == "any"
    handlers.update({"a/#": named("again")})  # replacing a filter keeps one entry
    assert sorted(handlers) == ["a/#", "a/b/c"] and _name(handlers.match("a/x")) == "again"


def _name(handler: MessageHandler | None) -> str | None:
    return None if handler is None else handler.__name__
