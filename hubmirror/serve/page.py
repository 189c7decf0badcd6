"""The plain HTML page at ``/``: mirrored repos with their model-card metadata, sizes and revisions."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

from ..errors import RevisionNotMirroredError
from ..units import human_size
from .auth import Caller
from .catalog import Catalog, Snapshot


def index_page(catalog: Catalog, caller: Caller) -> HTMLResponse:
    rows = []
    for repo_type in ("model", "dataset"):
        for repo in catalog.visible_repos(repo_type, caller):
            refs = catalog.index().refs(repo)
            main = next((r.commit for r in refs if r.name == "main"), refs[0].commit if refs else None)
            if main is None:
                continue
            try:
                snapshot = Snapshot(repo, main, catalog.files(repo, main))
            except RevisionNotMirroredError:
                continue
            card = catalog.card(snapshot) or {}
            meta = ", ".join(
                f"{k}: {escape(str(card[k]))}"
                for k in ("license", "language", "pipeline_tag", "library_name")
                if k in card
            )
            tags = card["tags"] if isinstance(card.get("tags"), list) else []
            revisions = ", ".join(f"{escape(r.name)} ({r.commit[:10]})" for r in refs)
            size = sum(f.size for f in snapshot.files.values())
            flags = (" (private)" if repo.private else "") + (" (gated)" if repo.gated else "")
            rows.append(
                f"<tr><td>{repo_type}</td><td><b>{escape(repo.name)}</b>{flags}"
                f"</td><td>{meta}<br><small>{escape(', '.join(map(str, tags)))}</small></td>"
                f"<td>{len(snapshot.files)} files, {human_size(size)}</td><td>{revisions}</td></tr>"
            )
    body = "\n".join(rows) or '<tr><td colspan="5">nothing mirrored yet</td></tr>'
    html = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>hubmirror</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}}</style></head>
<body><h1>hubmirror</h1>
<p>Set <code>HF_ENDPOINT</code> to this server's address to load these repos with unmodified code.</p>
<table><tr><th>type</th><th>repo</th><th>model card</th><th>size</th><th>revisions</th></tr>
{body}
</table></body></html>"""
    return HTMLResponse(html)
