"""Plain-text output of the commands (the ``--json`` forms print the same data as JSON)."""

from __future__ import annotations

from typing import Any

import typer

from ..sync import SyncReport
from ..units import human_size


def print_report(report: SyncReport) -> None:
    for r in report.results:
        commit = (r.commit or "")[:12]
        name = f"{r.type} {r.repo}@{r.revision}" + (f" (now {r.canonical})" if r.canonical else "")
        if r.status == "failed":
            typer.echo(f"FAILED     {name}: {r.error}")
        elif r.status == "unchanged":
            typer.echo(f"unchanged  {name} {commit}")
        elif r.status == "planned":
            typer.echo(
                f"would get  {name} {commit}: {r.files} files, fetch "
                f"{human_size(r.bytes_to_fetch)}, {human_size(r.bytes_deduped)} already present"
            )
        else:
            typer.echo(
                f"updated    {name} {commit}: {r.files} files, {r.files_fetched} fetched "
                f"({human_size(r.bytes_fetched)}), {r.files_deduped} already present "
                f"({human_size(r.bytes_deduped)})"
            )
    t = report.totals()
    done = sum(1 for r in report.results if r.ok)
    verb = "planned" if report.dry_run else "synced"
    typer.echo(
        f"{verb} {done}/{len(report.results)} repo revisions in {report.duration:.1f}s, "
        f"{report.requests} requests; "
        + (
            f"would fetch {human_size(t['bytes_to_fetch'])}"
            if report.dry_run
            else f"fetched {t['files_fetched']} files ({human_size(t['bytes_fetched'])}), "
            f"{human_size(t['bytes_deduped'])} saved by dedupe"
        )
    )


def print_status(data: dict[str, Any]) -> None:
    s = data["store"]
    typer.echo(f"home: {data['home']} (layout {data['layout']})")
    if not str(data.get("index", "")).endswith("index.sqlite"):
        typer.echo(f"index: {data['index']}")
    typer.echo(
        f"store: {s['blobs']} blobs, {human_size(s['stored_bytes'])} stored for "
        f"{human_size(s['logical_bytes'])} of mirrored files "
        f"({human_size(s['saved_bytes'])} saved by dedupe)"
    )
    reclaim = data.get("reclaimable") or {}
    if reclaim.get("bytes") or reclaim.get("commits"):
        typer.echo(
            f"reclaimable: {human_size(reclaim['bytes'])} in {reclaim['blobs']} blobs and "
            f"{reclaim['commits']} old commits ('hubmirror gc' frees them; --dry-run lists them)"
        )
    if not data["repos"]:
        typer.echo("no repos mirrored yet: list some under repos: and run 'hubmirror sync'")
    for repo in data["repos"]:
        aliases = f" (also: {', '.join(repo['aliases'])})" if repo["aliases"] else ""
        pulled = " (pulled through serve: files fetched on first request)" if repo.get("pulled") else ""
        typer.echo(f"{repo['type']} {repo['name']}{aliases}{pulled}")
        sizes = {c["sha"]: c for c in repo["commits"]}
        for ref, sha in sorted(repo["refs"].items()):
            c = sizes.get(sha, {"files": 0, "size": 0})
            typer.echo(f"  {ref} → {sha[:12]}  {c['files']} files, {human_size(c['size'] or 0)}")
        unnamed = [c for c in repo["commits"] if c["sha"] not in repo["refs"].values()]
        for c in unnamed:
            typer.echo(f"  {c['sha'][:12]}  {c['files']} files, {human_size(c['size'] or 0)}")
    for run in data["sync_runs"][:3]:
        errors = "; ".join(f"{e['repo']}@{e['revision']}: {e['error']}" for e in run["errors"])
        typer.echo(
            f"sync run {run['id']} at {run['started_at']}: {run['outcome'] or 'running/killed'}, "
            f"{run['files_fetched']} files fetched ({human_size(run['bytes_fetched'] or 0)}), "
            f"{human_size(run['bytes_deduped'] or 0)} deduped" + (f"; failed: {errors}" if errors else "")
        )
    if data.get("next_sync"):
        typer.echo(f"next scheduled sync: {data['next_sync']}")
    for bad in data.get("failing_repos", []):
        typer.echo(
            f"FAILING {bad['type']} {bad['repo']}@{bad['revision']}: failed in each of the last "
            f"{bad['runs']} runs: {bad['error']}"
        )
    pending = {(j["folder"], j["repo"]): j for j in data["push"]["pending"]}
    targets = {(t["folder"], t["repo"]): t for t in data["push"]["targets"]}
    for key in sorted(set(pending) | set(targets)):
        t, job = targets.get(key, {}), pending.get(key)
        last = (
            f"last pushed {t['last_commit'][:12]} at {t['last_pushed_at']}" if t.get("last_commit") else "never pushed"
        )
        line = f"watch {key[0]} → {key[1]}: {last}"
        if job:
            line += f"; 1 push pending (attempt {job['attempts'] + 1})"
        if t.get("last_error"):
            line += f"; last error: {t['last_error']}"
        typer.echo(line)
