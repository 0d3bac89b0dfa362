"""Meter samples of every version as numbers in base units (Wh, W, A, V), keeping originals that differ."""

from __future__ import annotations

import math
from typing import Any

_SCALE = {"kWh": ("Wh", 1000.0), "kW": ("W", 1000.0), "kvarh": ("varh", 1000.0), "kvar": ("var", 1000.0),
          "kVA": ("VA", 1000.0)}
DEFAULT_MEASURAND = "Energy.Active.Import.Register"
ENERGY_REGISTER = DEFAULT_MEASURAND
# A sample without a unit: the specs say Wh, written with energy in mind (1.6: "if the measurand is an Energy
# type"); read literally, a Current.Import of 16 would be 16 Wh. Other measurands take their own base unit.
_UNIT_OF_MEASURAND = (("Energy.Reactive", "varh"), ("Energy.Apparent", "VAh"), ("Energy", "Wh"),
                      ("Power.Reactive", "var"), ("Power.Apparent", "VA"), ("Power.Factor", ""), ("Power", "W"),
                      ("Current", "A"), ("Voltage", "V"), ("Frequency", "Hz"), ("Temperature", "Celsius"),
                      ("SoC", "Percent"), ("RPM", "RPM"))


def default_unit(measurand: str) -> str:
    return next((unit for prefix, unit in _UNIT_OF_MEASURAND if measurand.startswith(prefix)), "Wh")


def _sample(timestamp: str, raw: dict[str, Any], value: float, unit: str, original: str | None,
            warnings: list[str]) -> dict[str, Any] | None:
    """``None`` (with a warning) for a value that is no finite number in base units: JSON has no NaN."""
    base_unit, factor = _SCALE.get(unit, (unit, 1.0))
    if factor != 1.0:
        original = original or f"{value} {unit}"
    scaled = value * factor
    if not math.isfinite(scaled):
        warnings.append(f"sample value {(original or str(value))[:40]!r} is not a finite number; kept out")
        return None
    return {
        "timestamp": timestamp,
        "measurand": raw.get("measurand", DEFAULT_MEASURAND),
        "value": scaled,
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
            unit = raw.get("unit") or default_unit(raw.get("measurand", DEFAULT_MEASURAND))
            sample = _sample(mv["timestamp"], raw, value, unit, None if text == str(value) else text, warnings)
            if sample is not None:
                out.append(sample)
    return out


def samples_v2(meter_values: list[dict[str, Any]], warnings: list[str]) -> list[dict[str, Any]]:
    out = []
    for mv in meter_values:
        for raw in mv.get("sampledValue", []):
            uom = raw.get("unitOfMeasure", {})
            multiplier = uom.get("multiplier", 0)
            try:
                value = float(raw["value"]) * (10.0 ** multiplier)
            except OverflowError:
                value = math.inf
            original = f"{raw['value']}e{multiplier}" if multiplier else None
            unit = uom.get("unit") or default_unit(raw.get("measurand", DEFAULT_MEASURAND))
            sample = _sample(mv["timestamp"], raw, value, unit, original, warnings)
            if sample is not None:
                out.append(sample)
    return out


def energy_register_wh(samples: list[dict[str, Any]]) -> float | None:
    """A transaction's meter start/stop in 2.x: the last reading of the whole-charger energy register.

    Per-phase readings are parts, not the total; the outlet (or unlocated) register is preferred over an
    inlet or EV-side one, which a charger may report beside it."""
    totals = [s for s in samples if s["measurand"] == ENERGY_REGISTER and s["unit"] == "Wh" and s["phase"] is None]
    outlet = [s for s in totals if s["location"] in (None, "Outlet")]
    readings = outlet or totals
    return readings[-1]["value"] if readings else None
