"""Numbers for people: sizes in decimal units (as the Hub and ``du --si`` show them), and back."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)\s*$", re.IGNORECASE)
_FACTORS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}


def human_size(n: float) -> str:
    """``1234567`` → ``"1.2 MB"``; bytes below 1000 are shown whole (``"512 B"``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def parse_size(value: int | str) -> int:
    """``"50GB"`` → 50e9 bytes; ``"512MiB"`` → 512 × 2**20; a bare number is bytes. ValueError otherwise."""
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative, got {value}")
        return value
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"expected a size such as '500MB', '50GB' or '2TiB', got {value!r}")
    number, unit = float(match.group(1)), match.group(2).lower()
    binary, prefix = "i" in unit, unit.rstrip("b").rstrip("i")
    if binary and not prefix:
        raise ValueError(f"expected a size such as '500MB', '50GB' or '2TiB', got {value!r}")
    factor = 1024 ** ("kmgtp".index(prefix) + 1) if binary else _FACTORS[prefix]
    return int(number * factor)
