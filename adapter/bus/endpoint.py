"""Where the MQTT broker is and how to reach it, parsed from one URL setting.

``mqtt://host:port`` plain TCP; ``mqtts://host:port?ca=..&cert=..&key=..`` TLS / mTLS (also IoT Core with an X.509
identity); ``wss-sigv4://endpoint?region=..`` IoT Core over WebSockets signed with the task's AWS credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    host: str
    port: int
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    sigv4_region: str | None = None

    @property
    def is_iot_core(self) -> bool:
        """AWS IoT Core's data endpoint (``<prefix>-ats.iot.<region>.amazonaws.com``), by name or by SigV4."""
        return self.sigv4_region is not None or (".iot." in self.host and ".amazonaws.com" in self.host)

    @property
    def url(self) -> str:
        scheme = "wss-sigv4" if self.sigv4_region else ("mqtts" if self.tls else "mqtt")
        return f"{scheme}://{self.host}:{self.port}"


def parse_endpoint(url: str, *, ca_file: str | None = None, cert_file: str | None = None,
                   key_file: str | None = None) -> MqttEndpoint:
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = parts.hostname
    if not host:
        raise ValueError(f"MQTT URL {url!r} has no host")
    if parts.scheme == "mqtt":
        return MqttEndpoint(host, parts.port or 1883)
    if parts.scheme == "mqtts":
        return MqttEndpoint(host, parts.port or 8883, tls=True, ca_file=query.get("ca", ca_file),
                            cert_file=query.get("cert", cert_file), key_file=query.get("key", key_file))
    if parts.scheme == "wss-sigv4":
        region = query.get("region")
        if not region:
            raise ValueError("wss-sigv4 URLs need ?region=<aws region>")
        return MqttEndpoint(host, parts.port or 443, tls=True, ca_file=query.get("ca", ca_file),
                            sigv4_region=region)
    raise ValueError(f"MQTT URL scheme {parts.scheme!r} is not one of mqtt, mqtts, wss-sigv4")
