"""A store for the tests of serve's HTML pages (``test_serve_pages.py`` over HTTP, ``test_serve_browser.py``
in a real Chromium): repos synced by ``hubmirror sync`` from the fake upstream, chosen to exercise the pages.

* ``org/card-model``: a card with Markdown (headings, a table, a code block), hostile bits (a
  ``javascript:`` and a ``data:`` link, raw ``<script>``, an ``onerror`` image), HTML in its metadata, a
  relative link, an LFS file and a path that needs percent-encoding; branch ``dev`` and tag ``v1.0``;
* ``org/evil-meta``: card metadata made of markup (escaped in the filter options and everywhere else);
* ``org/secret-model``: private upstream (visible only with a token); ``org/gated-model``: gated;
* dataset ``org/page-data``; and ``org/never-existed`` in the config, so the last sync run has a failure;
* ``org/big-card`` (a README of pathological Markdown over the render limit, 1,001 files: the file list is paged).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import run_cli, write_config
from hubserver import HubServer
from servekit import ServeProcess

from hubmirror.index import open_index

UP_TOKEN = "pages-upstream-token"
TOKEN = "pages-admin-token"
READER = "pages-reader-token"  # a user without read_private
BIG = "org/big-card"
MANY_FILES = 1001
CARD_MODEL, EVIL, SECRET, GATED, DATASET, MISSING = (
    "org/card-model",
    "org/evil-meta",
    "org/secret-model",
    "org/gated-model",
    "org/page-data",
    "org/never-existed",
)
ODD_PATH = "sub dir/we ird#name?.txt"  # spaces, '#' and '?' must be percent-encoded in links
CARD = b"""---
license: apache-2.0
pipeline_tag: text-classification
library_name: transformers
language: [en, fr]
tags: ["<b>bold-tag</b>", demo]
---
# Card Title

Some *intro* text.

## Usage

| col a | col b |
|-------|-------|
| cell1 | cell2 |

```python
print("hello from the card")
```

[js link](javascript:document.title='pwned-js')
[data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)
[config file](config.json)

<script>document.title = "pwned-script"</script>

<img src="x" onerror="document.title='pwned-img'">
"""
EVIL_CARD = b"""---
license: '"><script>document.title="pwned-meta"</script>'
pipeline_tag: "<i>fill-mask</i>"
library_name: {nested: ["<b>x</b>"]}
tags: ["<svg onload=alert(1)>"]
---
# Evil metadata
"""
CONFIG_JSON = b'{"model_type": "bert", "hidden_size": 8}\n'
ODD_BYTES = b"odd name, plain bytes\n"
DATA_CARD = b"---\nlicense: cc-by-4.0\ntask_categories: [text-classification]\n---\n# Page data\n"


@dataclass
class PageSite:
    root: Path
    home: Path
    config: Path  # serve.token + a reader user, anonymous reads on
    closed_config: Path  # the same home with serve.anonymous off
    open_config: Path  # the same home with no serve tokens at all
    weights: bytes = b""
    shas: dict[str, str] = field(default_factory=dict)


def build_page_site(root: Path) -> PageSite:
    """Fill ``root/home`` through the fake upstream (stopped afterwards) and write three serve configs."""
    root.mkdir(parents=True, exist_ok=True)
    weights = os.urandom(20_000)
    site = PageSite(root, root / "home", root / "hubmirror.yaml", root / "closed.yaml", root / "open.yaml", weights)
    with HubServer(root / "upstream", token=UP_TOKEN) as up:
        up.lfs_threshold = 4096
        first = up.commit(CARD_MODEL, {"README.md": CARD, "config.json": CONFIG_JSON, ODD_PATH: ODD_BYTES})
        up.tag(CARD_MODEL, "v1.0", first)
        site.shas["v1.0"] = first
        site.shas["main"] = up.commit(CARD_MODEL, {"model.safetensors": weights}, message="weights")
        site.shas["dev"] = up.commit(CARD_MODEL, {"dev-only.txt": b"dev\n"}, branch="dev", message="dev work")
        up.commit(EVIL, {"README.md": EVIL_CARD})
        up.create_repo(SECRET, private=True)
        up.commit(SECRET, {"README.md": b"---\nlicense: other\n---\n# Secret\n", "config.json": CONFIG_JSON})
        up.create_repo(GATED, gated=True)
        up.commit(GATED, {"README.md": b"# Gated\n", "config.json": CONFIG_JSON})
        up.commit(DATASET, {"README.md": DATA_CARD, "train.csv": b"text,label\nhi,1\n"}, repo_type="dataset")
        big = {f"f/{i:04d}.txt": b"same bytes\n" for i in range(MANY_FILES - 1)}
        up.commit(BIG, {**big, "README.md": b"# Big\n" + b"[x" * (200 * 1024)})
        repos: list[dict[str, Any]] = [
            {"repo": BIG},
            {"repo": CARD_MODEL, "revisions": ["main", "dev", "v1.0"]},
            {"repo": EVIL},
            {"repo": SECRET},
            {"repo": GATED},
            {"repo": DATASET, "type": "dataset"},
            {"repo": MISSING},
        ]
        users = [{"name": "reader", "token": READER}]
        upstream = {"token": UP_TOKEN}
        write_config(site.config, up.url, site.home, repos, upstream=upstream, serve={"token": TOKEN, "users": users})
        write_config(
            site.closed_config, up.url, site.home, repos, upstream=upstream, serve={"token": TOKEN, "anonymous": False}
        )
        write_config(site.open_config, up.url, site.home, repos, upstream=upstream)
        r = run_cli("-c", str(site.config), "sync", timeout=240)
        # org/never-existed fails (that is the point); everything else must be there
        assert "never-existed" in r.stdout + r.stderr, r.stdout + r.stderr
        # sync learned the kinds from upstream: v1.0 is a tag, main and dev branches
        index = open_index(site.home / "index.sqlite")
        kinds = {ref.name: (ref.commit, ref.kind) for ref in index.refs(index.find_repo("model", CARD_MODEL))}
        index.close()
        assert kinds["v1.0"] == (first, "tag") and kinds["main"] == (site.shas["main"], "branch"), kinds
        for name in (CARD_MODEL, EVIL, SECRET, GATED, DATASET, BIG):
            assert (
                run_cli(
                    "-c", str(site.config), "resolve", name, *(["--type", "dataset"] if name == DATASET else [])
                ).returncode
                == 0
            ), name
    return site


def serve_page_site(site: PageSite) -> Iterator[ServeProcess]:
    """The body of a module's ``server`` fixture: serve over the page site; its log must hold no traceback."""
    with ServeProcess(site.config, site.root / "serve.log") as proc:
        yield proc
        assert "Traceback" not in proc.log(), proc.log()[-3000:]
