"""hubmirror: mirror Hugging Face Hub repos into a verified content-addressed store, use them offline."""

from __future__ import annotations

__version__ = "0.1.0"
