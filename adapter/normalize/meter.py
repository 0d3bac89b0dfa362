"""Meter samples of every version as numbers in base units (Wh, W, A, V), keeping originals that differ."""

from __future__ import annotations

from typing import Any

_SCALE = {"kWh": ("Wh", 1000.0), "kW": ("W", 1000.0), "kvarh": ("varh", 1000.0), "kvar": ("var", 1000.0),
          "kVA": ("VA", 1000.0)}
DEFAULT_MEASURAND = "Energy.Active.Import.Register"
ENERGY_REGISTER = DEFAULT_MEASURAND


def _sample(timestamp: str, raw: dict[str, Any], value: float, unit: str, original: str | None,
            ) -> dict[str, Any]:
    base_unit, factor = _SCALE.get(unit, (unit, 1.0))
    if factor != 1.0:
        original = original or f"{value} {unit}"
    return {
        "timestamp": timestamp,
        "measurand": raw.get("measurand", DEFAULT_MEASURAND),
        "value": value * factor,
        "unit": base_unit,
        "phase": raw.get("phase"),
        "location": raw.get("location"),
        "context": raw.get("context"),
        "original_value": original,
    }


def samples_v16(meter_values: list[dict[str, Any]], warnings: list[str]) -> list[dict[str, Any]]:
    out = []
    for mv in meter_values:
        for raw in mv.get("sampledValue", []):
            text = raw["value"]
            try:
                value = float(text)
            except ValueError:
                warnings.append(f"sample value {text[:40]!r} is not numeric (format {raw.get('format')}); kept out")
                continue
            unit = raw.get("unit", "Wh")
            out.append(_sample(mv["timestamp"], raw, value, unit, None if text == str(value) else text))
    return out


def samples_v2(meter_values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for mv in meter_values:
        for raw in mv.get("sampledValue", []):
            uom = raw.get("unitOfMeasure", {})
            multiplier = uom.get("multiplier", 0)
            value = float(raw["value"]) * (10.0 ** multiplier)
            original = f"{raw['value']}e{multiplier}" if multiplier else None
            out.append(_sample(mv["timestamp"], raw, value, uom.get("unit", "Wh"), original))
    return out


def energy_register_wh(samples: list[dict[str, Any]]) -> float | None:
    """The last energy register reading among samples (a transaction's meter start/stop in 2.x)."""
    readings = [s["value"] for s in samples if s["measurand"] == ENERGY_REGISTER and s["unit"] == "Wh"]
    return readings[-1] if readings else None
