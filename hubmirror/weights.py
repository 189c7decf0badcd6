"""Parameter counts of a commit's safetensors weights, read from the files' headers (the Hub's ``safetensors``
field of model info: ``{"parameters": {dtype: n}, "total": n}``).

Files come from anyone who may push, so every header is bounded and checked: a file whose header is too
large, not JSON, or describes tensors with impossible shapes makes the whole answer ``None`` (the field is
then left out), never an exception.
"""

from __future__ import annotations

import json
import logging
import math
import struct
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from .models import FileRecord

logger = logging.getLogger(__name__)

SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit
MAX_INDEX_BYTES = 64 * 1024 * 1024
MAX_DIMS = 64


class BadWeights(ValueError):
    """A safetensors file or index that cannot be read as one."""


def header_parameters(handle: BinaryIO) -> dict[str, int]:
    """Parameters per dtype in one safetensors file: the product of each tensor's shape, summed by dtype.

    Raises BadWeights for a header over MAX_HEADER_BYTES or longer than the file, bad JSON, or a tensor
    entry without a string ``dtype`` and a list of non-negative integers as ``shape``; OSError if unreadable.
    Reads only the header (the rest of a multi-GB file may be in object storage) and closes ``handle``."""
    with handle:
        prefix = handle.read(8)
        if len(prefix) != 8:
            raise BadWeights("shorter than the 8-byte header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES:
            raise BadWeights(f"header of {length} bytes is over the {MAX_HEADER_BYTES}-byte limit")
        raw = handle.read(length)
    if len(raw) != length:
        raise BadWeights(f"header of {length} bytes but the file ends after {len(raw)}")
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadWeights(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise BadWeights("header is not a JSON object")
    counts: dict[str, int] = {}
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(tensor, dict):
            raise BadWeights(f"tensor {name[:80]!r} is not an object")
        dtype, shape = tensor.get("dtype"), tensor.get("shape")
        if not isinstance(dtype, str) or not dtype or len(dtype) > 16:
            raise BadWeights(f"tensor {name[:80]!r} has no valid dtype")
        if not isinstance(shape, list) or len(shape) > MAX_DIMS:
            raise BadWeights(f"tensor {name[:80]!r} has no valid shape")
        if not all(type(dim) is int and dim >= 0 for dim in shape):
            raise BadWeights(f"tensor {name[:80]!r} has a shape that is not non-negative integers")
        counts[dtype] = counts.get(dtype, 0) + math.prod(shape)
    return counts


def _weight_files(files: dict[str, FileRecord], open_blob: Callable[[str], BinaryIO]) -> list[FileRecord]:
    """model.safetensors; else the shards model.safetensors.index.json names; else every top-level
    ``*.safetensors``. Empty when the commit has no safetensors weights."""
    if SINGLE in files:
        return [files[SINGLE]]
    index = files.get(INDEX)
    if index is not None:
        if index.size > MAX_INDEX_BYTES:
            raise BadWeights(f"{INDEX} is over {MAX_INDEX_BYTES} bytes")
        try:
            with open_blob(index.sha256) as handle:
                data: Any = json.loads(handle.read(MAX_INDEX_BYTES + 1))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise BadWeights(f"{INDEX} is not JSON: {exc}") from None
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise BadWeights(f"{INDEX} has no weight_map of file names")
        missing = sorted(set(weight_map.values()) - set(files))
        if missing:
            raise BadWeights(f"{INDEX} names shards not in the commit: {missing[:3]}")
        return [files[name] for name in sorted(set(weight_map.values()))]
    return [f for path, f in sorted(files.items()) if "/" not in path and path.endswith(".safetensors")]


def safetensors_info(files: Iterable[FileRecord], open_blob: Callable[[str], BinaryIO]) -> dict[str, Any] | None:
    """``{"parameters": {dtype: n}, "total": n}`` for a commit with these files, or None when it has no
    safetensors weights or any of them cannot be read (bad, hostile or missing)."""
    by_path = {f.path: f for f in files}
    counts: dict[str, int] = {}
    try:
        shards = _weight_files(by_path, open_blob)
        for shard in shards:
            for dtype, n in header_parameters(open_blob(shard.sha256)).items():
                counts[dtype] = counts.get(dtype, 0) + n
    except (BadWeights, OSError) as exc:
        logger.info("safetensors parameters not counted: %s", exc)
        return None
    if not shards:
        return None
    return {"parameters": counts, "total": sum(counts.values())}
