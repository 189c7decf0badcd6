"""Numbers for people: sizes in decimal units (as the Hub and ``du --si`` show them)."""

from __future__ import annotations


def human_size(n: float) -> str:
    """``1234567`` → ``"1.2 MB"``; bytes below 1000 are shown whole (``"512 B"``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"
