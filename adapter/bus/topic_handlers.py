"""Which handler takes an incoming topic, in a few dict lookups however many filters a client holds.

A shared pool connection holds four filters per charger, one of them a wildcard (``req/v1/{cp}/#``); a
linear scan over them cost milliseconds per back-end request at thousands of chargers. Wildcard filters
are bucketed by their literal levels before the first wildcard, so a topic only tries the buckets of its
own prefixes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

MessageHandler = Callable[[str, bytes], None]


class TopicHandlers:
    def __init__(self) -> None:
        self._exact: dict[str, MessageHandler] = {}
        self._wild: dict[str, dict[str, MessageHandler]] = {}  # literal prefix -> filter -> handler

    def update(self, handlers: Mapping[str, MessageHandler]) -> None:
        for topic_filter, handler in handlers.items():
            self.pop(topic_filter)
            if _is_wild(topic_filter):
                self._wild.setdefault(_literal_prefix(topic_filter), {})[topic_filter] = handler
            else:
                self._exact[topic_filter] = handler

    def pop(self, topic_filter: str) -> MessageHandler | None:
        if not _is_wild(topic_filter):
            return self._exact.pop(topic_filter, None)
        prefix = _literal_prefix(topic_filter)
        bucket = self._wild.get(prefix)
        if bucket is None:
            return None
        handler = bucket.pop(topic_filter, None)
        if not bucket:
            del self._wild[prefix]
        return handler

    def __iter__(self) -> Iterator[str]:
        yield from self._exact
        for bucket in self._wild.values():
            yield from bucket

    def __len__(self) -> int:
        return len(self._exact) + sum(len(bucket) for bucket in self._wild.values())

    def match(self, topic: str) -> MessageHandler | None:
        """The exact filter's handler, else that of a matching wildcard filter with the longest literal
        prefix."""
        handler = self._exact.get(topic)
        if handler is not None or not self._wild:
            return handler
        levels = topic.split("/")
        for depth in range(len(levels), -1, -1):
            bucket = self._wild.get("/".join(levels[:depth]))
            if bucket is not None:
                for topic_filter, candidate in bucket.items():
                    if topic_matches(topic_filter, topic):
                        return candidate
        return None


def _is_wild(topic_filter: str) -> bool:
    return any(level in ("+", "#") for level in topic_filter.split("/"))


def _levels(topic_filter: str) -> list[str]:
    levels = topic_filter.split("/")
    return levels[2:] if levels[0] == "$share" else levels  # $share/{group}/{filter}: topics carry the filter's


def _literal_prefix(topic_filter: str) -> str:
    levels = _levels(topic_filter)
    depth = next(i for i, level in enumerate(levels) if level in ("+", "#"))
    return "/".join(levels[:depth])


def topic_matches(topic_filter: str, topic: str) -> bool:
    f_parts, t_parts = _levels(topic_filter), topic.split("/")
    for i, part in enumerate(f_parts):
        if part == "#":
            return True
        if i >= len(t_parts) or (part != "+" and part != t_parts[i]):
            return False
    return len(f_parts) == len(t_parts)
