"""``GET /[datasets/]{repo}``: one repo like the Hub shows it — the card rendered, its metadata, branches and
tags, a revision selector (``?revision=``), the files with sizes and download links, and the code to load it.

Bounded per request: a README over ``MAX_CARD_BYTES`` is linked, not rendered (markdown-it-py renders about
50-100 kB/s on a loaded 2-core machine, whatever the input); a card is rendered once per commit and kept, by at
most ``RENDERERS`` threads at a time; the file list is paged."""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import quote

from starlette.requests import Request

from ...models import FileRecord, Ref, Repo
from ...units import human_size
from ..auth import Caller
from ..catalog import Catalog, Snapshot
from ..http import base_url
from .card import render_card
from .layout import esc, page, quote_path, repo_url
from .summary import card_list, card_text, default_ref, updated

MAX_CARD_BYTES = 256 * 1024
RENDERERS = threading.BoundedSemaphore(2)  # the other threads keep answering the API meanwhile
FILES_PER_PAGE = 1000
README = "README.md"


def repo_page(request: Request, catalog: Catalog, caller: Caller, repo: Repo, notice: str | None) -> str:
    """The page's HTML; raises RevisionNotMirroredError for a revision the mirror does not have."""
    refs = catalog.index().refs(repo)
    asked = request.query_params.get("revision", "")[:300]
    default = default_ref(refs)
    if not asked and default is None:
        body = f"<h1>{esc(repo.name)}</h1><p>No revision of this repo is mirrored yet.</p>"
        return page(repo.name, body, caller, notice=notice)
    revision = asked or (default.name if default else "main")
    commit = catalog.commit(repo, revision)
    snapshot = catalog.at(repo, commit)
    card = catalog.card(snapshot) or {}
    downloads = caller.may_download(repo)
    side = [_metadata(card), _snippet(request, repo, revision if asked else None), _refs(repo, refs, commit)]
    parts = [
        _title(repo, commit, refs),
        _revision_form(refs, revision),
        f'<div class="repo-grid"><div>{_card(catalog, snapshot, downloads)}</div><aside>{"".join(side)}</aside></div>',
        _files(request, snapshot, revision, downloads, caller),
    ]
    return page(repo.name, "".join(parts), caller, notice=notice)


def _title(repo: Repo, commit: str, refs: list[Ref]) -> str:
    flags = "".join(
        f' <span class="tag">{esc(f)}</span>'
        for f in (["dataset"] if repo.type == "dataset" else [])
        + (["private"] if repo.private else [])
        + ([f"gated ({repo.gated})"] if repo.gated else [])
    )
    when = updated(refs)
    return (
        f'<h1 id="repo-name">{esc(repo.name)}{flags}</h1><p class="muted">commit <code id="commit">{esc(commit)}'
        f"</code>" + (f" · updated {esc(when)}" if when else "") + "</p>"
    )


def _revision_form(refs: list[Ref], current: str) -> str:
    names = [r.name for r in refs]
    options = [
        f'<option value="{esc(name)}"{" selected" if name == current else ""}>{esc(name)}</option>' for name in names
    ]
    if current not in names:
        options.insert(0, f'<option value="{esc(current)}" selected>{esc(current)}</option>')
    return (
        '<form method="get" class="search"><label>revision <select name="revision" id="revision">'
        f'{"".join(options)}</select></label> <button type="submit">show</button></form>'
    )


def _metadata(card: dict[str, Any]) -> str:
    rows = []
    for key, label in (
        ("license", "license"),
        ("pipeline_tag", "pipeline tag"),
        ("library_name", "library"),
        ("language", "languages"),
        ("datasets", "datasets"),
        ("base_model", "base model"),
        ("task_categories", "task categories"),
    ):
        value = card_text(card, key)
        if value:
            rows.append(f'<tr><th>{esc(label)}</th><td class="meta-{esc(key)}">{esc(value)}</td></tr>')
    tags = card_list(card, "tags")
    if tags:
        rows.append(
            "<tr><th>tags</th><td>" + "".join(f'<span class="tag">{esc(t)}</span>' for t in tags) + "</td></tr>"
        )
    return f'<table id="metadata">{"".join(rows)}</table>' if rows else ""


def _snippet(request: Request, repo: Repo, revision: str | None) -> str:
    name = json.dumps(repo.name)
    extra = f", revision={json.dumps(revision)}" if revision else ""
    if repo.type == "dataset":
        code = f"from datasets import load_dataset\n\nds = load_dataset({name}{extra})\n"
    else:
        code = (
            "from transformers import AutoModel, AutoTokenizer\n\n"
            f"tokenizer = AutoTokenizer.from_pretrained({name}{extra})\n"
            f"model = AutoModel.from_pretrained({name}{extra})\n"
        )
    shell = f"export HF_ENDPOINT={base_url(request)}\n"
    if repo.private or repo.gated:
        shell += "export HF_TOKEN=<a token of this mirror that may read it>\n"
    return (
        '<h2>Use it</h2><pre id="endpoint"><code>'
        f'{esc(shell)}</code></pre><pre id="snippet"><code>{esc(code)}</code></pre>'
    )


def _refs(repo: Repo, refs: list[Ref], commit: str) -> str:
    groups: dict[str, list[Ref]] = {"branch": [], "tag": [], "pr": []}
    for ref in refs:
        groups["branch" if ref.kind in (None, "branch") else ref.kind].append(ref)
    out = []
    for kind, title, key in (
        ("branch", "Branches", "branches"),
        ("tag", "Tags", "tags"),
        ("pr", "Pull requests", "prs"),
    ):
        if not groups.get(kind):
            continue
        rows = "".join(
            f'<tr><td><a href="{esc(repo_url(repo.type, repo.name))}?revision={esc(quote(r.name, safe=""))}">'
            f"{esc(r.name)}</a>{' (shown)' if r.commit == commit else ''}</td><td><code>{esc(r.commit[:12])}</code>"
            f"</td><td>{esc(updated([r]))}</td></tr>"
            for r in groups[kind]
        )
        out.append(f'<h2>{title}</h2><table id="{key}">{rows}</table>')
    return "".join(out)


def _files_base(snapshot: Snapshot) -> str:
    return f"{repo_url(snapshot.repo.type, snapshot.repo.name)}/resolve/{snapshot.commit}/"


def _card(catalog: Catalog, snapshot: Snapshot, downloads: bool) -> str:
    record = snapshot.files.get(README)
    if record is None:
        return '<h2>Model card</h2><p class="muted">This repo has no README.md.</p>'
    if README in snapshot.missing:  # pull-through lists it; it is fetched when someone downloads it
        return (
            '<h2>Model card</h2><p class="muted">README.md is not on this mirror yet: '
            "it is fetched on first download.</p>"
        )
    if record.size > MAX_CARD_BYTES:
        link = f'<a href="{esc(_files_base(snapshot) + README)}">README.md</a>' if downloads else "README.md"
        return f"<h2>Model card</h2><p>The card is {human_size(record.size)}, too large to show here: {link}.</p>"

    def make() -> bytes:
        text = catalog.store.read_blob(record.sha256).decode("utf-8", errors="replace")
        with RENDERERS:
            return render_card(text, _files_base(snapshot)).encode()

    try:
        rendered = catalog.body(("card_html", snapshot.repo, snapshot.commit), make).decode()
    except OSError:
        return '<h2>Model card</h2><p class="error">README.md is missing from the store (run hubmirror verify).</p>'
    return f'<h2>Model card</h2><article class="card" id="card">{rendered}</article>'


def _files(request: Request, snapshot: Snapshot, revision: str, downloads: bool, caller: Caller) -> str:
    records = sorted(snapshot.files.values(), key=lambda f: f.path)
    pages = max(1, -(-len(records) // FILES_PER_PAGE))
    raw = request.query_params.get("page", "1")
    number = min(int(raw), pages) if raw.isdigit() and 0 < len(raw) < 9 and int(raw) > 0 else 1
    shown = records[(number - 1) * FILES_PER_PAGE : number * FILES_PER_PAGE]
    total = sum(f.size for f in records)
    head = f'<h2>Files</h2><p class="muted">{len(records)} files, {human_size(total)}</p>'
    if not downloads:
        head += (
            '<p class="notice">This repo is gated: its files download only with a token that may read it'
            + (' (<a href="/-/login">log in</a>).' if caller.anonymous else ".")
            + "</p>"
        )
    rows = "".join(_file_row(snapshot, f, downloads) for f in shown)
    table = f'<table id="files"><tr><th>path</th><th class="num">size</th></tr>{rows}</table>'
    return head + table + _pager(snapshot, revision, number, pages)


def _file_row(snapshot: Snapshot, record: FileRecord, downloads: bool) -> str:
    name = esc(record.path)
    if downloads:
        name = f'<a class="download" href="{esc(_files_base(snapshot) + quote_path(record.path))}">{name}</a>'
    lfs = ' <span class="tag">LFS</span>' if record.lfs else ""
    return f'<tr><td>{name}{lfs}</td><td class="num" title="{record.size} bytes">{human_size(record.size)}</td></tr>'


def _pager(snapshot: Snapshot, revision: str, number: int, pages: int) -> str:
    if pages == 1:
        return ""
    base = f"{repo_url(snapshot.repo.type, snapshot.repo.name)}?revision={quote(revision, safe='')}&page="
    links = []
    if number > 1:
        links.append(f'<a href="{esc(base)}{number - 1}">previous</a>')
    links.append(f"page {number} of {pages}")
    if number < pages:
        links.append(f'<a href="{esc(base)}{number + 1}" id="next-files">next</a>')
    return f'<p class="pager">{" · ".join(links)}</p>'
