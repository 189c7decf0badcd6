"""``GET /-/status``: the mirror's health for the people who run it — recent sync runs, what failed in the
last one, pushes waiting in the outbox, and disk use. Reads the index's own queries (no SQL here).

Repos a caller may not read are never named: they are counted instead (the dispatcher already requires a
token for this page whenever the server has tokens; without any, only private names need hiding)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

from ...index import NEXT_SYNC_KEY, PushBook, PushJob, SyncRunRecord
from ...units import human_size
from ..auth import Caller
from ..catalog import Catalog
from .layout import esc, page, repo_url

RUNS = 10


def status_page(catalog: Catalog, caller: Caller, notice: str | None) -> str:
    index = catalog.index()
    runs = index.sync_runs(RUNS)

    def visible(repo_type: str, name: str) -> bool | None:
        """True: may see it and it has a page; None: may see its name, but it is not mirrored; False: hidden."""
        repo = index.find_repo(repo_type, name)
        if repo is None:
            return None if not caller.anonymous else False
        return caller.may_read(repo)

    parts = ["<h1>Mirror status</h1>", _disk(catalog), _next_sync(index.get_meta(NEXT_SYNC_KEY))]
    parts.append(_runs(runs))
    finished = next((r for r in runs if r.finished_at), None)
    parts.append(_failures(finished, visible))
    parts.append(_outbox(PushBook(index).jobs(), visible, caller))
    return page("Status", "".join(parts), caller, notice=notice)


def _disk(catalog: Catalog) -> str:
    stats = catalog.index().stats()
    usage = shutil.disk_usage(catalog.home)
    saved = max(0, stats.logical_bytes - stats.stored_bytes)
    rows = [
        ("repos", f"{stats.repos} ({stats.commits} commits)"),
        ("blobs in the store", f"{stats.blobs}, {human_size(stats.stored_bytes)}"),
        ("saved by dedupe", human_size(saved)),
        ("free on the store's disk", f"{human_size(usage.free)} of {human_size(usage.total)}"),
    ]
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<h2>Disk</h2><table id="disk">{body}</table>'


def _next_sync(value: str | None) -> str:
    return f"<p>Next scheduled sync: {esc(value)}</p>" if value else ""


def _runs(runs: list[SyncRunRecord]) -> str:
    if not runs:
        return "<h2>Sync runs</h2><p>No sync has run on this store.</p>"
    head = (
        "<tr><th>started</th><th>outcome</th><th>repos ok</th><th>failed</th><th>fetched</th>"
        "<th>deduped</th><th>duration</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{esc(r.started_at[:19].replace('T', ' '))} UTC</td><td>{esc(r.outcome or 'running')}</td>"
        f"<td>{r.repos_ok}</td>"
        f"<td>{r.repos_failed}</td><td>{r.files_fetched} files, {human_size(r.bytes_fetched or 0)}</td>"
        f"<td>{human_size(r.bytes_deduped or 0)}</td><td>{_seconds(r.duration)}</td></tr>"
        for r in runs
    )
    return f'<h2>Sync runs</h2><table id="runs">{head}{rows}</table>'


def _seconds(duration: float | None) -> str:
    return "" if duration is None else f"{duration:.1f} s"


def _failures(run: SyncRunRecord | None, visible: Callable[[str, str], bool | None]) -> str:
    if run is None or not run.errors:
        return '<h2>Failing repos</h2><p id="failures">None in the last sync run.</p>'
    rows, hidden = [], 0
    for error in run.errors:
        repo_type, name = str(error.get("type", "model")), str(error.get("repo", ""))
        shown = visible(repo_type, name)
        if shown is False:
            hidden += 1
            continue
        link = f'<a href="{esc(repo_url(repo_type, name))}">{esc(name)}</a>' if shown else esc(name)
        rows.append(
            f"<tr><td>{link}</td><td>{esc(error.get('revision', ''))}</td><td>{esc(error.get('error', ''))}</td></tr>"
        )
    more = f"<p>{hidden} more in repos you may not see.</p>" if hidden else ""
    return f'<h2>Failing repos</h2><table id="failures">{"".join(rows)}</table>{more}'


def _outbox(jobs: list[PushJob], visible: Callable[[str, str], bool | None], caller: Caller) -> str:
    if not jobs:
        return '<h2>Pending pushes</h2><p id="outbox">The outbox is empty.</p>'
    rows, hidden = [], 0
    now = time.time()
    for job in jobs:
        if visible(job.type, job.repo) is False:
            hidden += 1
            continue
        folder = "" if caller.anonymous else job.folder
        due = "now" if job.next_attempt <= now else f"in {int(job.next_attempt - now)} s"
        rows.append(
            f"<tr><td>{esc(job.repo)}@{esc(job.revision)}</td><td>{esc(folder)}</td><td>{job.attempts}</td>"
            f"<td>{esc(due)}</td><td>{esc(job.last_error or '')}</td></tr>"
        )
    head = "<tr><th>target</th><th>folder</th><th>attempts</th><th>next try</th><th>last error</th></tr>"
    more = f"<p>{hidden} more for repos you may not see.</p>" if hidden else ""
    return f'<h2>Pending pushes</h2><table id="outbox">{head}{"".join(rows)}</table>{more}'
