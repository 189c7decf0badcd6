"""Model info's ``safetensors`` field, ``expand`` field selection, and listing filters and sorts (issue 12),
through a real ``hubmirror serve`` and the real ``huggingface_hub`` client.

The home holds the real all-MiniLM-L6-v2 (one ``model.safetensors``), a sharded model (an index and two
shards), a model with only top-level ``*.safetensors`` files, models whose weights are hostile (a header
length of 1 TB, bad JSON, negative or text shapes, a truncated header, an index naming a missing shard), and
two datasets; the cards differ in pipeline tag, library, languages and license.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import pytest
from conftest import MINILM, run_cli, write_config
from hubserver import HubServer, add_minilm, minilm_dir
from safetensors import safe_open
from safetensors.numpy import save as save_safetensors
from servekit import ServeProcess, hf_client

pytestmark = pytest.mark.timeout(240)

SHARDED = "org/sharded"
TOPLEVEL = "org/toplevel"
DATA_EN = "org/data-en"
DATA_FR = "org/data-fr"
HOSTILE = {
    "bad/huge-header": struct.pack("<Q", 1 << 40) + b"{}",
    "bad/not-json": struct.pack("<Q", 10) + b"{not json!",
    "bad/negative-shape": None,  # filled in below
    "bad/text-shape": None,
    "bad/truncated": struct.pack("<Q", 1000) + b'{"a": {"dtype": "F32", "shape": [1]',
    "bad/list-header": struct.pack("<Q", 2) + b"[]",
    "bad/short": b"\x01\x02",
}


def _header_file(header: dict[str, Any]) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw


HOSTILE["bad/negative-shape"] = _header_file({"w": {"dtype": "F32", "shape": [-4, 3], "data_offsets": [0, 0]}})
HOSTILE["bad/text-shape"] = _header_file({"w": {"dtype": "F32", "shape": ["4"], "data_offsets": [0, 16]}})


def _card(**meta: Any) -> bytes:
    lines = ["---", *(f"{k}: {json.dumps(v)}" for k, v in meta.items()), "---", "# card", ""]
    return "\n".join(lines).encode()


def _sharded_files() -> dict[str, bytes]:
    one = save_safetensors(
        {"embed": np.zeros((10, 4), dtype=np.float32), "ids": np.zeros((7,), dtype=np.int64)},
        metadata={"format": "pt"},
    )
    two = save_safetensors({"head": np.zeros((4, 3), dtype=np.float16), "scale": np.zeros((), dtype=np.float32)})
    index = {
        "metadata": {"total_size": len(one) + len(two)},
        "weight_map": {
            "embed": "model-00001-of-00002.safetensors",
            "ids": "model-00001-of-00002.safetensors",
            "head": "model-00002-of-00002.safetensors",
            "scale": "model-00002-of-00002.safetensors",
        },
    }
    return {
        "README.md": _card(
            pipeline_tag="text-generation", library_name="transformers", language=["en", "fr"], license="mit"
        ),
        "config.json": b'{"model_type": "toy"}',
        "model.safetensors.index.json": json.dumps(index).encode(),
        "model-00001-of-00002.safetensors": one,
        "model-00002-of-00002.safetensors": two,
        "not-a-shard/extra.safetensors": save_safetensors({"x": np.zeros((100,), dtype=np.float32)}),
    }


SHARDED_COUNTS = {"F32": 10 * 4 + 1, "I64": 7, "F16": 12}
TOPLEVEL_COUNTS = {"BF16": 0, "F32": 6 * 5 + 2}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("fields")
    with HubServer(tmp / "upstream") as up:
        add_minilm(up)
        up.commit(SHARDED, _sharded_files())
        a = save_safetensors({"a": np.zeros((6, 5), dtype=np.float32), "empty": np.zeros((0, 3), dtype=np.float32)})
        b = _header_file({"b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "__metadata__": {"x": "y"}})
        b += b"\0" * 8
        c = _header_file({"c": {"dtype": "BF16", "shape": [0], "data_offsets": [0, 0]}})
        readme = _card(library_name="timm", language="de", license="apache-2.0", tags=["vision"])
        up.commit(TOPLEVEL, {"README.md": readme, "a.safetensors": a, "b.safetensors": b, "c.safetensors": c})
        for repo, data in HOSTILE.items():
            files = {"model.safetensors": data, "README.md": _card(library_name="hostile")}
            up.commit(repo, files)
        bad_index = {"weight_map": {"w": "missing-shard.safetensors"}}
        up.commit("bad/missing-shard", {"model.safetensors.index.json": json.dumps(bad_index).encode()})
        up.commit("bad/index-not-json", {"model.safetensors.index.json": b"{nope"})
        ds_card = _card(license="mit", language="en", task_categories=["text-classification"], paperswithcode_id="pwc")
        up.commit(DATA_EN, {"README.md": ds_card, "train.csv": b"a\n1\n"}, repo_type="dataset")
        up.commit(DATA_FR, {"README.md": _card(language=["fr"]), "train.csv": b"a\n2\n"}, repo_type="dataset")
        repos = [
            {"repo": r} for r in [MINILM, SHARDED, TOPLEVEL, *HOSTILE, "bad/missing-shard", "bad/index-not-json"]
        ] + [{"repo": DATA_EN, "type": "dataset"}, {"repo": DATA_FR, "type": "dataset"}]
        config = write_config(tmp / "hubmirror.yaml", up.url, tmp / "home", repos)
        r = run_cli("-c", str(config), "sync", timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
    yield config


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[ServeProcess]:
    with ServeProcess(site, site.parent / "serve.log") as proc:
        yield proc
        assert proc.proc is not None and proc.proc.poll() is None, f"serve died:\n{proc.log()}"
        log = proc.log()
        assert "Traceback" not in log and "internal error" not in log, log[-3000:]


@pytest.fixture(scope="module")
def http(server: ServeProcess) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=server.url, timeout=30) as c:
        yield c


def client(server: ServeProcess, tmp_path: Path, code: str) -> Any:
    r = hf_client(code, server.url, tmp_path / "hf-cache")
    assert r.ok, r
    return r.result


def _independent_counts(paths: list[Path]) -> dict[str, int]:
    """Parameters per dtype as the safetensors package reads them."""
    names = {"float32": "F32", "float16": "F16", "int64": "I64"}
    counts: dict[str, int] = {}
    for path in paths:
        with safe_open(str(path), framework="np") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                sl = f.get_slice(key)
                dtype = sl.get_dtype()
                dtype = names.get(dtype, dtype)
                counts[dtype] = counts.get(dtype, 0) + int(np.prod(sl.get_shape()))
    return counts


# ============================================================================================ safetensors
def test_model_info_safetensors_matches_the_safetensors_package(server: ServeProcess, tmp_path: Path) -> None:
    result = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import HfApi
        api = HfApi()
        def st(repo, **kw):
            s = api.model_info(repo, **kw).safetensors
            return None if s is None else {{"parameters": s.parameters, "total": s.total}}
        meta = api.get_safetensors_metadata({MINILM!r})
        sharded = api.get_safetensors_metadata({SHARDED!r})
        result = {{
            "minilm": st({MINILM!r}), "minilm_rev": st({MINILM!r}, revision="main"),
            "sharded": st({SHARDED!r}), "toplevel": st({TOPLEVEL!r}),
            "meta": [meta.sharded, meta.parameter_count], "sharded_meta": [sharded.sharded, sharded.parameter_count],
            "listed": {{m.id: m.safetensors.total if m.safetensors else None
                       for m in api.list_models(expand=["safetensors"])}},
        }}
        """,
    )
    expected = _independent_counts([minilm_dir() / "model.safetensors"])
    assert expected and sum(expected.values()) > 20_000_000  # the real 22.7M-parameter model
    minilm = {"parameters": expected, "total": sum(expected.values())}
    assert result["minilm"] == minilm and result["minilm_rev"] == minilm
    assert result["meta"] == [False, expected]
    # the shards the index names (not the file in a sub-folder); the independent count agrees
    assert result["sharded"] == {"parameters": SHARDED_COUNTS, "total": sum(SHARDED_COUNTS.values())}
    assert result["sharded_meta"] == [True, SHARDED_COUNTS]
    # no model.safetensors and no index: every top-level *.safetensors (empty tensors count 0)
    assert result["toplevel"] == {"parameters": TOPLEVEL_COUNTS, "total": sum(TOPLEVEL_COUNTS.values())}
    assert result["listed"][MINILM] == sum(expected.values()) and result["listed"][SHARDED] == 60


@pytest.mark.parametrize("repo", [*HOSTILE, "bad/missing-shard", "bad/index-not-json"])
def test_hostile_weights_give_no_field_and_no_error(repo: str, http: httpx2.Client) -> None:
    for path in (f"/api/models/{repo}", f"/api/models/{repo}/revision/main", f"/api/models/{repo}?expand=safetensors"):
        r = http.get(path)
        assert r.status_code == 200, (path, r.text)
        assert "safetensors" not in r.json(), path
        assert r.json()["id"] == repo
    listed = http.get("/api/models", params={"search": repo, "full": "true"}).json()
    assert [m["id"] for m in listed] == [repo] and "safetensors" not in listed[0]


def test_datasets_have_no_safetensors_field(http: httpx2.Client) -> None:
    info = http.get(f"/api/datasets/{DATA_EN}").json()
    assert info["id"] == DATA_EN and "safetensors" not in info


# ============================================================================================ expand
def test_expand_answers_only_the_expanded_properties(server: ServeProcess, tmp_path: Path, http: httpx2.Client) -> None:
    result = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import HfApi
        api = HfApi()
        m = api.model_info({SHARDED!r}, expand=["sha", "safetensors", "pipeline_tag", "cardData"])
        d = api.dataset_info({DATA_EN!r}, expand=["tags", "paperswithcode_id", "siblings"])
        result = {{
            "model": [m.id, m.sha, m.safetensors.total, m.pipeline_tag, m.card_data.license, m.siblings, m.tags],
            "dataset": [d.id, d.tags, d.paperswithcode_id, [s.rfilename for s in d.siblings], d.sha],
        }}
        """,
    )
    sha = http.get(f"/api/models/{SHARDED}").json()["sha"]
    assert result["model"] == [SHARDED, sha, 60, "text-generation", "mit", None, None]
    assert result["dataset"][:4] == [
        DATA_EN,
        ["task_categories:text-classification", "language:en", "license:mit"],
        "pwc",
        ["README.md", "train.csv"],
    ]
    assert result["dataset"][4] is None
    # on the wire: _id and id plus exactly what was asked, in either spelling of the parameter
    for params in ({"expand": ["sha", "likes"]}, {"expand[]": ["sha", "likes"]}):
        body = http.get(f"/api/models/{MINILM}", params=params).json()
        assert sorted(body) == ["_id", "id", "likes", "sha"], body
    # properties a mirror has no data for are left out, not made up
    body = http.get(f"/api/models/{MINILM}", params={"expand": ["config", "widgetData", "gguf", "author"]}).json()
    assert sorted(body) == ["_id", "author", "id"] and body["author"] == "sentence-transformers"
    body = http.get(f"/api/models/{MINILM}/revision/main", params={"expand": "siblings"}).json()
    assert sorted(body) == ["_id", "id", "siblings"] and {"rfilename": "model.safetensors"} in body["siblings"]
    body = http.get(f"/api/datasets/{DATA_FR}", params={"expand": ["downloadsAllTime", "trendingScore"]}).json()
    assert body == {"_id": body["_id"], "id": DATA_FR, "downloadsAllTime": 0, "trendingScore": 0}


def test_unknown_expand_is_a_400_naming_it(server: ServeProcess, tmp_path: Path, http: httpx2.Client) -> None:
    r = hf_client(
        f"""
        from huggingface_hub import HfApi
        HfApi().model_info({MINILM!r}, expand=["sha", "no_such_property"])
        """,
        server.url,
        tmp_path / "hf-cache",
    )
    assert r.raised("BadRequestError") and r.status == 400, r
    assert "no_such_property" in r.message and '"expand" must be one of' in r.message
    for path, params in [
        (f"/api/models/{MINILM}", {"expand": "mainSize"}),  # a dataset property, not a model one
        (f"/api/datasets/{DATA_EN}", {"expand[]": "safetensors"}),
        ("/api/models", {"expand": "bogus"}),
        ("/api/datasets", {"expand": ["sha", "pipeline_tag"]}),
    ]:
        resp = http.get(path, params=params)
        assert resp.status_code == 400 and "must be one of" in resp.json()["error"], (path, resp.text)


# ============================================================================================ listings
def test_list_models_filters(server: ServeProcess, tmp_path: Path) -> None:
    result = client(
        server,
        tmp_path,
        """
        from huggingface_hub import HfApi
        api = HfApi()
        ids = lambda **kw: sorted(m.id for m in api.list_models(**kw))
        result = {
            "pipeline": ids(pipeline_tag="text-generation"),
            "similarity": ids(pipeline_tag="sentence-similarity"),
            "tag": ids(filter="vision"),
            "library_tag": ids(filter="timm"),
            "license_and_lang": ids(filter=["license:mit", "fr"]),
            "lang_prefixed": ids(filter="language:de"),
            "none": ids(filter=["license:mit", "de"]),
            "author": ids(author="bad"),
            "search_author": ids(author="org", search="shard"),
            "safetensors": ids(filter="safetensors", author="org"),
            "gated": ids(gated=True),
            "not_gated": len(ids(gated=False)),
            "all": len(ids()),
        }
        """,
    )
    assert result["pipeline"] == [SHARDED] and result["similarity"] == [MINILM]
    assert result["tag"] == [TOPLEVEL] and result["library_tag"] == [TOPLEVEL]
    assert result["license_and_lang"] == [SHARDED] and result["lang_prefixed"] == [TOPLEVEL]
    assert result["none"] == []
    assert result["author"] == sorted([*HOSTILE, "bad/missing-shard", "bad/index-not-json"])
    assert result["search_author"] == [SHARDED]
    assert result["safetensors"] == [SHARDED, TOPLEVEL]
    assert result["gated"] == [] and result["not_gated"] == result["all"] == 3 + len(HOSTILE) + 2


def test_list_models_library_and_language_parameters(http: httpx2.Client) -> None:
    def ids(**params: Any) -> list[str]:
        r = http.get("/api/models", params=params)
        assert r.status_code == 200, r.text
        return sorted(m["id"] for m in r.json())

    assert ids(library="transformers") == [SHARDED]
    assert ids(library="hostile") == sorted(HOSTILE)
    assert ids(language="fr") == [SHARDED] and ids(language="de") == [TOPLEVEL]
    assert ids(language=["en", "fr"]) == [SHARDED]  # every language asked must be in the card
    assert ids(language="en", library="timm") == []


def test_list_datasets_filters(server: ServeProcess, tmp_path: Path) -> None:
    result = client(
        server,
        tmp_path,
        """
        from huggingface_hub import HfApi
        api = HfApi()
        ids = lambda **kw: sorted(d.id for d in api.list_datasets(**kw))
        result = {"en": ids(language="en"), "fr": ids(language="fr"), "task": ids(task_categories="text-classification"),
                  "license": ids(filter="license:mit"), "all": ids(), "search": ids(dataset_name="data", search="fr")}
        """,
    )
    assert result == {
        "en": [DATA_EN],
        "fr": [DATA_FR],
        "task": [DATA_EN],
        "license": [DATA_EN],
        "all": [DATA_EN, DATA_FR],
        "search": [DATA_FR],
    }


def test_list_models_default_fields_full_and_card(server: ServeProcess, tmp_path: Path, http: httpx2.Client) -> None:
    item = next(m for m in http.get("/api/models", params={"search": "sharded"}).json())
    assert sorted(item) == sorted(
        [
            "_id",
            "id",
            "author",
            "modelId",
            "likes",
            "trendingScore",
            "downloads",
            "private",
            "gated",
            "tags",
            "pipeline_tag",
            "library_name",
            "createdAt",
            "lastModified",
        ]
    )
    assert item["tags"] == ["transformers", "text-generation", "en", "fr", "license:mit", "safetensors"]
    full = http.get("/api/models", params={"search": "sharded", "full": "true"}).json()[0]
    assert "siblings" in full and "sha" in full and "safetensors" in full and "cardData" not in full
    card = http.get("/api/models", params={"search": "sharded", "cardData": "true"}).json()[0]
    assert card["cardData"]["license"] == "mit" and "siblings" not in card
    result = client(
        server,
        tmp_path,
        """
        from huggingface_hub import HfApi
        api = HfApi()
        m = next(iter(api.list_models(search="sharded", cardData=True)))
        e = next(iter(api.list_models(search="sharded", expand=["sha", "tags"])))
        result = [m.id, m.card_data.license, m.library_name, e.sha, e.tags, e.pipeline_tag]
        """,
    )
    assert result[:3] == [SHARDED, "mit", "transformers"]
    assert result[3] == full["sha"] and result[4] == item["tags"] and result[5] is None


def test_list_models_sort_direction_and_limit(http: httpx2.Client) -> None:
    def listed(**params: Any) -> list[dict[str, Any]]:
        r = http.get("/api/models", params={"expand": ["lastModified", "createdAt", "likes", "downloads"], **params})
        assert r.status_code == 200, r.text
        return r.json()

    everything = [m["id"] for m in listed()]
    assert [m["id"] for m in listed(sort="id")] == sorted(everything)
    assert [m["id"] for m in listed(sort="id", direction="-1")] == sorted(everything, reverse=True)
    for key in ("lastModified", "createdAt", "likes", "downloads"):
        down = listed(sort=key)
        assert len(down) == len(everything)
        values = [m[key] for m in down]
        assert values == sorted(values, reverse=True), key  # descending unless direction=1
        # ties keep id order, so a sort over equal values is stable across calls
        ties = [m["id"] for m in down if m[key] == values[0]]
        assert ties == sorted(ties)
        up = [m[key] for m in listed(sort=key, direction="1")]
        assert up == sorted(up)
    three = listed(sort="id", limit=3)
    assert [m["id"] for m in three] == sorted(everything)[:3]
    assert [m["id"] for m in listed(sort="trendingScore", limit=2)] == sorted(everything)[:2]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"sort": "popularity"}, "sort must be one of"),
        ({"sort": "likes", "direction": "up"}, "direction must be 1"),
        ({"direction": "2"}, "direction must be 1"),
        ({"gated": "maybe"}, "gated must be true or false"),
        ({"limit": "ten"}, "must be a non-negative integer"),
    ],
)
def test_bad_listing_parameters_are_400s(http: httpx2.Client, params: dict[str, str], fragment: str) -> None:
    for path in ("/api/models", "/api/datasets"):
        r = http.get(path, params=params)
        assert r.status_code == 400 and fragment in r.json()["error"], (path, r.text)
