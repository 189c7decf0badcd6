"""The ``hubmirror`` command line: parse, build objects from config, call one library function, print.

Exit codes come from the error classes (see :mod:`hubmirror.errors` and the README); 2 is a usage error.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from .config import Config, find_config_path, load_config
from .entry import home_without_config
from .errors import HubMirrorError
from .mirror import Mirror
from .sync import SyncReport

app = typer.Typer(
    name="hubmirror", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Mirror Hugging Face Hub repos into a verified local store, and use them with no network.")


@dataclass
class _State:
    config_path: Path | None
    home: Path | None
    verbose: int
    quiet: bool


def _setup_logging(verbose: int, quiet: bool) -> None:
    # On a terminal the progress bar and summary say enough; under cron/systemd INFO lines are the record.
    level = logging.INFO if not sys.stderr.isatty() else logging.WARNING
    if verbose:
        level = logging.DEBUG if verbose > 1 else logging.INFO
    if quiet:
        level = logging.ERROR
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx2").setLevel(max(level, logging.WARNING))
    logging.getLogger("httpcore2").setLevel(max(level, logging.WARNING))


@app.callback()
def _main(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(
        "-c", "--config", help="Config file. Default: $HUBMIRROR_CONFIG, then ./hubmirror.yaml.")] = None,
    home: Annotated[Path | None, typer.Option(
        "--home", help="Store directory; overrides $HUBMIRROR_HOME and the config's home.")] = None,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True,
                                         help="More log output (-vv for debug).")] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on stderr.")] = False,
) -> None:
    ctx.obj = _State(config, home, verbose, quiet)
    _setup_logging(verbose, quiet)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn our errors into one line on stderr and the class's exit code."""
    try:
        yield
    except HubMirrorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted; partial downloads are kept and resume on the next run", err=True)
        raise typer.Exit(130) from None


def _config(state: _State) -> Config:
    config = load_config(find_config_path(state.config_path))
    if state.home is not None:
        config = _with_home(config, state.home)
    return config


def _with_home(config: Config, home: Path) -> Config:
    from dataclasses import replace

    return replace(config, home=home.expanduser().absolute())


def _home_without_config(state: _State) -> Path:
    return home_without_config(state.home, state.config_path)


def _progress(enabled: bool):
    """A progress bar on a terminal (rich is imported only then), else None."""
    if not (enabled and sys.stderr.isatty()):
        return None
    from .progress import SyncProgress

    return SyncProgress()


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def _print_report(report: SyncReport) -> None:
    for r in report.results:
        commit = (r.commit or "")[:12]
        name = f"{r.type} {r.repo}@{r.revision}" + (f" (now {r.canonical})" if r.canonical else "")
        if r.status == "failed":
            typer.echo(f"FAILED     {name}: {r.error}")
        elif r.status == "unchanged":
            typer.echo(f"unchanged  {name} {commit}")
        elif r.status == "planned":
            typer.echo(f"would get  {name} {commit}: {r.files} files, fetch "
                       f"{human_size(r.bytes_to_fetch)}, {human_size(r.bytes_deduped)} already present")
        else:
            typer.echo(f"updated    {name} {commit}: {r.files} files, {r.files_fetched} fetched "
                       f"({human_size(r.bytes_fetched)}), {r.files_deduped} already present "
                       f"({human_size(r.bytes_deduped)})")
    t = report.totals()
    done = sum(1 for r in report.results if r.ok)
    verb = "planned" if report.dry_run else "synced"
    typer.echo(f"{verb} {done}/{len(report.results)} repo revisions in {report.duration:.1f}s, "
               f"{report.requests} requests; "
               + (f"would fetch {human_size(t['bytes_to_fetch'])}" if report.dry_run
                  else f"fetched {t['files_fetched']} files ({human_size(t['bytes_fetched'])}), "
                       f"{human_size(t['bytes_deduped'])} saved by dedupe"))


@app.command()
def sync(
    ctx: typer.Context,
    repos: Annotated[list[str] | None, typer.Argument(
        help="Only these repos (as listed in the config). Default: all.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show what would be fetched (files, bytes, bytes already present); write nothing.")] = False,
    locked: Annotated[bool, typer.Option(
        "--locked", help="Fetch exactly what hubmirror.lock pins; fail if upstream cannot provide it.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
    progress: Annotated[bool, typer.Option(help="Progress bar on a terminal.")] = True,
    every: Annotated[str | None, typer.Option(
        "--every", help="Keep syncing at this interval (6h, 30m, 90s) until SIGINT/SIGTERM.")] = None,
    cron: Annotated[str | None, typer.Option(
        "--cron", help="Keep syncing on this cron schedule ('0 3 * * *') until stopped.")] = None,
    scheduled: Annotated[bool, typer.Option(
        "--scheduled", help="Keep syncing on the config's sync.every / sync.cron until stopped.")] = False,
) -> None:
    """Mirror the repos the config lists into the store. Exit 0 only when every repo revision synced.

    With --every/--cron/--scheduled it keeps running: runs never overlap (a slot that falls due during a
    run is skipped and logged), and SIGTERM stops it cleanly with exit code 0."""
    state: _State = ctx.obj
    with _errors():
        config = _config(state)
        if every is not None or cron is not None or scheduled:
            _sync_on_schedule(config, every, cron, as_json)
            return
        observer = _progress(progress and not as_json)
        with Mirror(config.home) as mirror, (observer or nullcontext()), _stop_on_signals() as stop:
            report = mirror.sync(config, repos or (), dry_run=dry_run, locked=locked, observer=observer,
                                 stop=stop)
        _print_json(report.as_dict()) if as_json else _print_report(report)
        raise typer.Exit(report.exit_code)


def _sync_on_schedule(config: Config, every: str | None, cron: str | None, as_json: bool) -> None:
    from .config import parse_duration
    from .cron import parse_cron
    from .service import schedule_for, scheduled_sync

    try:
        seconds = parse_duration(every) if every is not None else None
        if cron is not None:
            parse_cron(cron)
        schedule = schedule_for(config, seconds, cron)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if schedule is None:
        raise HubMirrorError("--scheduled: the config has neither sync.every nor sync.cron")

    def show(report: SyncReport) -> None:
        if as_json:
            typer.echo(json.dumps(report.as_dict(), sort_keys=True))  # one line per run
        else:
            _print_report(report)

    with _stop_on_signals() as stop:
        scheduled_sync(config, schedule, stop, show)


@app.command()
def lock(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
) -> None:
    """Sync, then pin every repo revision to its commit and every file to its sha256 in hubmirror.lock."""
    state: _State = ctx.obj
    with _errors():
        config = _config(state)
        observer = _progress(not as_json)
        with Mirror(config.home) as mirror, (observer or nullcontext()):
            report, path = mirror.lock(config, observer=observer)
        if as_json:
            _print_json({**report.as_dict(), "lock_file": str(path) if path else None})
        else:
            _print_report(report)
            typer.echo(f"wrote {path}" if path else "lock file not written: some repos failed to sync")
        raise typer.Exit(report.exit_code)


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable status.")] = False,
) -> None:
    """What is mirrored: repos, revisions → commits, sizes, dedupe savings, recent sync runs."""
    state: _State = ctx.obj
    with _errors():
        with Mirror(_home_without_config(state)) as mirror:
            data = mirror.status()
        if as_json:
            _print_json(data)
            return
        _print_status(data)


def _print_status(data: dict[str, Any]) -> None:
    s = data["store"]
    typer.echo(f"home: {data['home']} (layout {data['layout']})")
    typer.echo(f"store: {s['blobs']} blobs, {human_size(s['stored_bytes'])} stored for "
               f"{human_size(s['logical_bytes'])} of mirrored files "
               f"({human_size(s['saved_bytes'])} saved by dedupe)")
    if not data["repos"]:
        typer.echo("no repos mirrored yet: list some under repos: and run 'hubmirror sync'")
    for repo in data["repos"]:
        aliases = f" (also: {', '.join(repo['aliases'])})" if repo["aliases"] else ""
        typer.echo(f"{repo['type']} {repo['name']}{aliases}")
        sizes = {c["sha"]: c for c in repo["commits"]}
        for ref, sha in sorted(repo["refs"].items()):
            c = sizes.get(sha, {"files": 0, "size": 0})
            typer.echo(f"  {ref} → {sha[:12]}  {c['files']} files, {human_size(c['size'] or 0)}")
        unnamed = [c for c in repo["commits"] if c["sha"] not in repo["refs"].values()]
        for c in unnamed:
            typer.echo(f"  {c['sha'][:12]}  {c['files']} files, {human_size(c['size'] or 0)}")
    for run in data["sync_runs"][:3]:
        errors = "; ".join(f"{e['repo']}@{e['revision']}: {e['error']}" for e in run["errors"])
        typer.echo(f"sync run {run['id']} at {run['started_at']}: {run['outcome'] or 'running/killed'}, "
                   f"{run['files_fetched']} files fetched ({human_size(run['bytes_fetched'] or 0)}), "
                   f"{human_size(run['bytes_deduped'] or 0)} deduped" + (f"; failed: {errors}" if errors else ""))
    if data.get("next_sync"):
        typer.echo(f"next scheduled sync: {data['next_sync']}")
    for bad in data.get("failing_repos", []):
        typer.echo(f"FAILING {bad['type']} {bad['repo']}@{bad['revision']}: failed in each of the last "
                   f"{bad['runs']} runs: {bad['error']}")
    pending = {(j["folder"], j["repo"]): j for j in data["push"]["pending"]}
    targets = {(t["folder"], t["repo"]): t for t in data["push"]["targets"]}
    for key in sorted(set(pending) | set(targets)):
        t, job = targets.get(key, {}), pending.get(key)
        last = f"last pushed {t['last_commit'][:12]} at {t['last_pushed_at']}" if t.get("last_commit") \
            else "never pushed"
        line = f"watch {key[0]} → {key[1]}: {last}"
        if job:
            line += f"; 1 push pending (attempt {job['attempts'] + 1})"
        if t.get("last_error"):
            line += f"; last error: {t['last_error']}"
        typer.echo(line)




# -- offline use ---------------------------------------------------------------------------------
@app.command()
def resolve(
    ctx: typer.Context,
    repo: Annotated[str, typer.Argument(help="Repo id as listed (or an old name it had).")],
    filename: Annotated[str | None, typer.Argument(help="A file in the repo; omit for the snapshot folder.")] = None,
    revision: Annotated[str, typer.Option("--revision", "-r",
                                          help="Branch, tag, full commit sha or a unique sha prefix (≥ 7).")] = "main",
    repo_type: Annotated[str, typer.Option("--type", "-t", help="model or dataset.")] = "model",
) -> None:
    """Print the local path of a mirrored snapshot (or one file of it). Never touches the network.

    The snapshot folder loads with from_pretrained(path). Exit 4 when it is not mirrored."""
    from .entry import resolve_path

    state: _State = ctx.obj
    with _errors():
        typer.echo(str(resolve_path(_home_without_config(state), repo, filename, revision, repo_type)))


@app.command("hf-cache")
def hf_cache(
    ctx: typer.Context,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Where to lay out the view (e.g. ~/.cache/huggingface/hub). Default: HOME/hf/hub.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
) -> None:
    """(Re)build an HF-cache view of the mirror and print its path; HF_HUB_CACHE can point at it."""
    state: _State = ctx.obj
    with _errors(), Mirror(_home_without_config(state)) as mirror:
        report = mirror.build_view(directory)
        if as_json:
            _print_json({"path": str(report.root), "repos": report.repos, "snapshots": report.snapshots,
                         "link_mode": report.link_mode})
            return
        typer.echo(f"{report.repos} repos, {report.snapshots} snapshots; blobs are {report.link_mode}s "
                   "to the store", err=True)
        typer.echo(str(report.root))


@app.command()
def env(ctx: typer.Context) -> None:
    """Print shell exports that make unmodified huggingface_hub/transformers code load from the mirror
    offline: eval "$(hubmirror env)"."""
    import shlex

    state: _State = ctx.obj
    with _errors(), Mirror(_home_without_config(state)) as mirror:
        root = mirror.view.root
        if not root.is_dir():
            mirror.build_view()
        typer.echo(f"export HF_HUB_CACHE={shlex.quote(str(root))}")
        typer.echo("export HF_HUB_OFFLINE=1")
        typer.echo("export HF_HUB_DISABLE_TELEMETRY=1")


@app.command("import-hf-cache")
def import_hf_cache(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="A huggingface_hub cache dir (the one holding models--*).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable report.")] = False,
) -> None:
    """Bring an existing huggingface_hub cache into the store, verifying every file against its hash."""
    state: _State = ctx.obj
    with _errors(), Mirror(_home_without_config(state)) as mirror:
        report = mirror.import_hf_cache(directory)
        if as_json:
            _print_json(report.as_dict())
        else:
            for line in report.skipped:
                typer.echo(f"skipped: {line}")
            typer.echo(f"imported {report.commits_imported} snapshots ({report.files_imported} new files, "
                       f"{human_size(report.bytes_imported)}), {report.commits_present} already mirrored, "
                       f"{human_size(report.bytes_saved)} already in the store, {report.refs} refs")


# -- serving -------------------------------------------------------------------------------------
@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to bind. Default: serve.host (127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port. Default: serve.port (8080).")] = None,
) -> None:
    """Answer the Hub's HTTP API from the mirror: point HF_ENDPOINT at it. Pushes need serve.token."""
    from .config import ServeConfig
    from .serve import run

    state: _State = ctx.obj
    with _errors():
        try:
            config = _config(state)
            serve_config, home = config.serve, config.home
        except HubMirrorError:
            if state.config_path is not None:
                raise
            serve_config, home = ServeConfig(), _home_without_config(state)
        Mirror(home).close()  # create or check the store before binding
        run(home, host or serve_config.host, port if port is not None else serve_config.port,
            serve_config.token, log_level="warning" if state.quiet else "info")


# -- pushing -------------------------------------------------------------------------------------
@app.command()
def push(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="A model folder, e.g. save_pretrained output.")],
    repo: Annotated[str, typer.Option("--repo", help="Target repo id upstream (org/name).")],
    repo_type: Annotated[str, typer.Option("--type", "-t", help="model or dataset.")] = "model",
    revision: Annotated[str, typer.Option("--revision", "-r", help="Branch to commit to.")] = "main",
    message: Annotated[str, typer.Option("-m", "--message", help="Commit summary.")] = "Upload with hubmirror",
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    create: Annotated[bool, typer.Option("--create", help="Create the repo if it does not exist.")] = False,
    delete_remote: Annotated[bool, typer.Option(
        "--delete-remote", help="Delete remote files that are not in the folder.")] = False,
    add_model_card: Annotated[bool, typer.Option(
        "--add-model-card", help="Add a minimal README.md card when neither side has one.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable result.")] = False,
) -> None:
    """Push what changed in FOLDER to the upstream repo as one commit (nothing changed: no commit)."""
    from dataclasses import asdict

    from .config import validate_repo_id

    state: _State = ctx.obj
    with _errors():
        try:
            validate_repo_id(repo)
        except ValueError as exc:
            raise typer.BadParameter(f"--repo {repo!r}: {exc}") from exc
        config = _config(state)
        with Mirror(config.home) as mirror, Mirror.client_for(config) as client:
            result = mirror.pusher(client).push(
                folder, repo, repo_type=repo_type, revision=revision, message=message, private=private,
                create=create, delete_remote=delete_remote, add_model_card=add_model_card)
        if as_json:
            data = asdict(result)
            data.pop("pushed_files")
            _print_json(data)
            return
        for line in result.skipped + result.warnings:
            typer.echo(f"warning: {line}", err=True)
        if result.status == "up to date":
            typer.echo(f"{repo}@{revision} is up to date ({result.files_hashed} files hashed)")
        else:
            typer.echo(f"pushed {result.files_uploaded} files ({human_size(result.bytes_uploaded)}, "
                       f"{result.lfs_uploaded} by LFS), deleted {len(result.deleted)}: {result.url}")


@app.command()
def watch(
    ctx: typer.Context,
    retry_min: Annotated[float, typer.Option(help="First retry delay after a failed push, seconds.")] = 5.0,
    retry_max: Annotated[float, typer.Option(help="Longest retry delay, seconds.")] = 300.0,
) -> None:
    """Watch the config's watch: folders and push each settled change; runs until SIGINT/SIGTERM.

    Failed pushes stay in the outbox (in the index) and are retried with backoff, across restarts."""
    from .autopush import AutoPush

    state: _State = ctx.obj
    with _errors():
        config = _config(state)
        if not config.watch:
            raise HubMirrorError("the config has no watch: entries; add one (see config/hubmirror.example.yaml)")
        with Mirror(config.home) as mirror, Mirror.client_for(config) as client:
            runner = AutoPush(mirror.pusher(client), list(config.watch), retry_min=retry_min,
                              retry_max=retry_max)
            with _stop_on_signals() as stop:
                runner.run(stop)


@contextmanager
def _stop_on_signals() -> Iterator[Any]:
    """An Event set by SIGINT or SIGTERM, so long-running commands stop cleanly with exit code 0."""
    import signal
    import threading

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command()
def run(
    ctx: typer.Context,
    serve_flag: Annotated[bool | None, typer.Option(
        "--serve/--no-serve", help="Start the server. Default: when the config has a serve: section.")] = None,
) -> None:
    """Run what the config asks for in one process: scheduled sync (sync.every / sync.cron), the watch:
    folders, and the server. SIGTERM/SIGINT stop everything cleanly (exit 0)."""
    from .service import run_service

    state: _State = ctx.obj
    with _errors():
        config = _config(state)
        with _stop_on_signals() as stop:
            run_service(config, stop, serve=serve_flag)
