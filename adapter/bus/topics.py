"""The MQTT topic contract of DESIGN.md §3; every template is configurable."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topics:
    event_prefix: str = "ocpp/{cp}"
    lifecycle: str = "/devices/lifecycle/{cp}"
    shadow: str = "$aws/things/{cp}/shadow"
    request_root: str = "req/v1"
    response_root: str = "res/v1"
    delegate_reply_root: str = "delegate/v1"

    def event(self, cp: str, suffix: str) -> str:
        return f"{self.event_prefix.format(cp=cp)}/{suffix}"

    def lifecycle_of(self, cp: str) -> str:
        return self.lifecycle.format(cp=cp)

    def lifecycle_filter(self) -> str:
        return self.lifecycle.format(cp="+")

    def shadow_update(self, cp: str) -> str:
        return f"{self.shadow.format(cp=cp)}/update"

    def shadow_update_rejected(self, cp: str) -> str:
        return f"{self.shadow.format(cp=cp)}/update/rejected"

    def shadow_delta(self, cp: str) -> str:
        return f"{self.shadow.format(cp=cp)}/update/delta"

    def shadow_get(self, cp: str) -> str:
        return f"{self.shadow.format(cp=cp)}/get"

    def shadow_get_accepted(self, cp: str) -> str:
        return f"{self.shadow.format(cp=cp)}/get/accepted"

    def requests_of(self, cp: str) -> str:
        return f"{self.request_root}/{cp}/#"

    def all_requests(self) -> str:
        return f"{self.request_root}/+/#"

    def response(self, cp: str, namespace: str, request_id: str, operation: str) -> str:
        return f"{self.response_root}/{cp}/{namespace}/{request_id}/{operation}"

    def delegate_request(self, cp: str, action: str) -> str:
        return self.event(cp, f"delegate/{action}")

    def delegate_reply(self, adapter_id: str, cp: str, request_id: str) -> str:
        """Under the asking instance: each hears only its own replies, not every instance's."""
        return f"{self.delegate_reply_root}/{adapter_id}/{cp}/{request_id}"

    def delegate_replies_to(self, adapter_id: str) -> str:
        return self.delegate_reply(adapter_id, "+", "+")

    def parse_request(self, topic: str) -> tuple[str, str, str, str] | None:
        """(charger, namespace, request id, operation) of a request topic, or None if it isn't one."""
        root = self.request_root + "/"
        if not topic.startswith(root):
            return None
        parts = topic[len(root):].split("/")
        if len(parts) != 4 or not all(parts):
            return None
        return parts[0], parts[1], parts[2], parts[3]
