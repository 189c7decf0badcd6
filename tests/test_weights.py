"""``hubmirror.weights``: safetensors parameter counts from headers, and every way a header can be bad."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from hubmirror.hashing import git_blob_sha1
from hubmirror.models import FileRecord
from hubmirror.weights import MAX_HEADER_BYTES, BadWeights, header_parameters, safetensors_info


def _file(path: Path, header: object, raw: bytes | None = None) -> Path:
    body = raw if raw is not None else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body)
    return path


def test_counts_per_dtype_skipping_metadata(tmp_path: Path) -> None:
    header = {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]},
        "b": {"dtype": "F32", "shape": [], "data_offsets": [48, 52]},
        "c": {"dtype": "BF16", "shape": [2, 0, 5], "data_offsets": [52, 52]},
        "d": {"dtype": "I8", "shape": [1 << 40, 1 << 30], "data_offsets": [52, 52]},  # big ints stay exact
    }
    assert header_parameters(_file(tmp_path / "w.safetensors", header).open("rb")) == {
        "F32": 13,
        "BF16": 0,
        "I8": 1 << 70,
    }


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "shorter than the 8-byte"),
        (struct.pack("<Q", MAX_HEADER_BYTES + 1), "over the"),
        (struct.pack("<Q", 100) + b"{}", "file ends after 2"),
        (struct.pack("<Q", 4) + b"\xff\xfe{}", "not JSON"),
        (struct.pack("<Q", 200_001) + b"[" * 100_000 + b"]" * 100_001, "not JSON"),  # deep nesting
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
        (struct.pack("<Q", 8) + b'{"a": 1}', "is not an object"),
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, raw: bytes, fragment: str) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(raw)
    with pytest.raises(BadWeights, match=fragment):
        header_parameters(path.open("rb"))


@pytest.mark.parametrize(
    "tensor",
    [
        {"shape": [1]},
        {"dtype": "", "shape": [1]},
        {"dtype": "X" * 17, "shape": [1]},
        {"dtype": "F32"},
        {"dtype": "F32", "shape": "12"},
        {"dtype": "F32", "shape": [1.5]},
        {"dtype": "F32", "shape": [True]},
        {"dtype": "F32", "shape": [-1]},
        {"dtype": "F32", "shape": [1] * 65},
    ],
)
def test_impossible_tensors_are_refused(tmp_path: Path, tensor: dict) -> None:
    with pytest.raises(BadWeights):
        header_parameters(_file(tmp_path / "w.safetensors", {"t": tensor}).open("rb"))


def _records(tmp_path: Path, files: dict[str, bytes]) -> tuple[list[FileRecord], dict[str, Path]]:
    blobs: dict[str, Path] = {}
    records = []
    for i, (name, data) in enumerate(files.items()):
        digest = f"{i:064x}"
        blobs[digest] = tmp_path / digest
        blobs[digest].write_bytes(data)
        records.append(FileRecord(name, len(data), digest, git_blob_sha1(data), lfs=False))
    return records, blobs


def _weights(shape: list[int]) -> bytes:
    body = json.dumps({"w": {"dtype": "F16", "shape": shape, "data_offsets": [0, 0]}}).encode()
    return struct.pack("<Q", len(body)) + body


def test_which_files_count(tmp_path: Path) -> None:
    def info(files: dict[str, bytes]) -> object:
        records, blobs = _records(tmp_path, files)
        return safetensors_info(records, lambda digest: blobs[digest].open("rb"))

    assert info({"README.md": b"x"}) is None  # no weights: no field
    assert info({"model.safetensors": _weights([2]), "other.safetensors": _weights([3])}) == {
        "parameters": {"F16": 2},
        "total": 2,
    }
    index = json.dumps({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors", "c": "s1.safetensors"}})
    sharded = {
        "model.safetensors.index.json": index.encode(),
        "s1.safetensors": _weights([4]),
        "s2.safetensors": _weights([5]),
    }
    assert info(sharded) == {"parameters": {"F16": 9}, "total": 9}
    assert info({**sharded, "s2.safetensors": b"junk"}) is None  # one bad shard: no field at all
    assert info(
        {"a.safetensors": _weights([1]), "b.safetensors": _weights([2]), "sub/c.safetensors": _weights([9])}
    ) == {
        "parameters": {"F16": 3},
        "total": 3,
    }
    for bad_index in (
        b"{",
        b"[]",
        b'{"weight_map": [1]}',
        b'{"weight_map": {"a": 1}}',
        b'{"weight_map": {"a": "gone"}}',
    ):
        assert info({"model.safetensors.index.json": bad_index, "x.safetensors": _weights([1])}) is None


def test_a_missing_blob_gives_no_field(tmp_path: Path) -> None:
    records, _ = _records(tmp_path, {"model.safetensors": _weights([1])})
    assert safetensors_info(records, lambda digest: (tmp_path / "nowhere" / digest).open("rb")) is None
