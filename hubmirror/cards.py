"""Model-card metadata: the README.md YAML header of a commit, parsed once when the commit is published
(sync, push, import) with a size limit and a bound on alias expansion, and kept as JSON in the index. serve
then never parses YAML per request."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from .config import parse_card_metadata
from .models import FileRecord

logger = logging.getLogger(__name__)

README = "README.md"
MAX_README_BYTES = 4 * 1024 * 1024
NO_CARD = ""  # stored for "looked, there is none (or it is invalid)"; NULL means "not looked yet"


def card_json(files: Iterable[FileRecord], open_blob: Callable[[str], BinaryIO]) -> str:
    """The card of a commit with these files, as JSON text (``NO_CARD`` when there is none or it is invalid)."""
    readme = next((f for f in files if f.path == README), None)
    if readme is None or readme.size > MAX_README_BYTES:
        return NO_CARD
    try:
        with open_blob(readme.sha256) as handle:
            text = handle.read(MAX_README_BYTES).decode("utf-8", errors="replace")
        card = parse_card_metadata(text)
    except (OSError, ValueError) as exc:
        logger.debug("model card of %s not read: %s", readme.sha256[:12], exc)
        return NO_CARD
    return json.dumps(card, sort_keys=True) if card is not None else NO_CARD


def card_from_json(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None
