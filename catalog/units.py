"""Unit conversion between the UN/CEFACT common codes FIWARE uses in ``unitCode``.

A contract column declares its canonical unit; a reading that says it is in another unit is converted on
decoding (``canonical = value * scale + offset``). A unit with no known conversion is a decode error naming
the column — a value in an unknown unit is not comparable with the rest of the column.
"""

from __future__ import annotations

# (from, to) -> (scale, offset)
CONVERSIONS: dict[tuple[str, str], tuple[float, float]] = {
    ("GP", "GQ"): (1000.0, 0.0),  # mg/m³ -> µg/m³
    ("GQ", "GP"): (0.001, 0.0),
    ("MTS", "KMH"): (3.6, 0.0),  # m/s -> km/h
    ("KMH", "MTS"): (1 / 3.6, 0.0),
    ("FAH", "CEL"): (5 / 9, -160 / 9),  # °F -> °C
    ("CEL", "FAH"): (9 / 5, 32.0),
    ("KEL", "CEL"): (1.0, -273.15),
    ("P1", "C62"): (0.01, 0.0),  # percent -> fraction (unit "one")
    ("C62", "P1"): (100.0, 0.0),
    ("MIN", "SEC"): (60.0, 0.0),
    ("SEC", "MIN"): (1 / 60, 0.0),
    ("KTM", "MTR"): (1000.0, 0.0),  # km -> m
    ("MTR", "KTM"): (0.001, 0.0),
    ("CMT", "MTR"): (0.01, 0.0),
    ("WHR", "KWH"): (0.001, 0.0),
    ("KWH", "WHR"): (1000.0, 0.0),
    ("KWT", "WTT"): (1000.0, 0.0),
    ("WTT", "KWT"): (0.001, 0.0),
    ("A97", "HPA"): (1.0, 0.0),  # hectopascal: both codes are in use
    ("PAL", "A97"): (0.01, 0.0),
    ("59", "61"): (1000.0, 0.0),  # ppm -> ppb
    ("61", "59"): (0.001, 0.0),
}


def conversions_to(unit: str) -> dict[str, tuple[float, float]]:
    """Every unit code that converts to ``unit``, with its (scale, offset); ``unit`` itself included."""
    found = {source: factors for (source, target), factors in CONVERSIONS.items() if target == unit}
    found[unit] = (1.0, 0.0)
    return found
