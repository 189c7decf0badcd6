"""hubmirror: mirror Hugging Face Hub repos into a verified content-addressed store, use them offline.

    >>> import hubmirror
    >>> path = hubmirror.snapshot_path("sentence-transformers/all-MiniLM-L6-v2")  # no network
    >>> AutoModel.from_pretrained(path)

``Mirror`` (store + index + sync) and the lookups are imported on first use, so that a command only pays for
what it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigError,
    HubMirrorError,
    IntegrityError,
    NotMirroredError,
    UpstreamError,
    UpstreamUnavailableError,
)
from .version import __version__

if TYPE_CHECKING:
    from .mirror import Mirror
    from .resolve import file_path, snapshot_path

__all__ = [
    "ConfigError",
    "HubMirrorError",
    "IntegrityError",
    "Mirror",
    "NotMirroredError",
    "UpstreamError",
    "UpstreamUnavailableError",
    "__version__",
    "file_path",
    "snapshot_path",
]


def __getattr__(name: str) -> Any:
    # Loaded on first use: every `hubmirror` command imports this package, and most never need these.
    if name == "Mirror":
        from .mirror import Mirror

        return Mirror
    if name in ("file_path", "snapshot_path"):
        from . import resolve

        return getattr(resolve, name)
    raise AttributeError(f"module 'hubmirror' has no attribute {name!r}")
