"""The config as frozen dataclasses: what every other part reads (never the YAML itself)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from ..errors import ConfigError
from ..models import Backends

DEFAULT_ENDPOINT = "https://huggingface.co"
LOCK_FILENAME = "hubmirror.lock"


@dataclass(frozen=True)
class UpstreamConfig:
    endpoint: str = DEFAULT_ENDPOINT
    token: str | None = field(default=None, repr=False)  # repr=False: a logged Config never shows it
    timeout: float = 30.0
    max_retries: int = 8
    max_requests_per_5min: int = 800


@dataclass(frozen=True)
class SyncConfig:
    workers: int = 16
    every: float | None = None  # seconds; `every` and `cron` are mutually exclusive
    cron: str | None = None
    jitter: float = 0.0


@dataclass(frozen=True)
class RepoSpec:
    repo: str
    type: str = "model"
    revisions: tuple[str, ...] = ("main",)
    allow_patterns: tuple[str, ...] | None = None
    ignore_patterns: tuple[str, ...] | None = None
    line: int | None = None  # where the entry starts in the config file, for messages


@dataclass(frozen=True)
class WatchSpec:
    path: Path
    repo: str
    type: str = "model"
    revision: str = "main"
    private: bool = False
    debounce: float = 5.0
    delete_remote: bool = False
    create: bool = True
    add_model_card: bool = False
    message: str = "Update from hubmirror watch"


@dataclass(frozen=True)
class ServeUser:
    """A token of serve's with its rights: writes to repos matching ``write`` (``org/*`` globs; may then read
    those repos when private), and reads every private repo when ``read_private``."""

    name: str
    token: str = field(repr=False)
    write: tuple[str, ...] = ()
    read_private: bool = False


@dataclass(frozen=True)
class PullThroughConfig:
    """``serve.pull_through``: fetch what is not mirrored yet on first request. ``allow``/``deny`` are globs on
    ``org/name``; one prefixed with a type (``dataset:org/*``) applies to that type only."""

    enabled: bool = False
    allow: tuple[str, ...] = ("*",)
    deny: tuple[str, ...] = ()
    metadata_ttl: float = 600.0  # seconds a revision → commit answer from upstream is trusted
    max_file_size: int = 50 * 1000**3
    max_total_size: int = 2 * 1000**4

    def permits(self, repo_type: str, name: str) -> bool:
        """Whether a repo may be pulled: allowed by a pattern and denied by none."""
        return _matches(self.allow, repo_type, name) and not _matches(self.deny, repo_type, name)


def _matches(patterns: tuple[str, ...], repo_type: str, name: str) -> bool:
    for pattern in patterns:
        kind, colon, glob = pattern.partition(":")
        if not colon:
            kind, glob = repo_type, pattern
        if kind == repo_type and fnmatchcase(name, glob):
            return True
    return False


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = field(default=None, repr=False)  # the admin token: reads everything, writes anything
    users: tuple[ServeUser, ...] = ()
    anonymous: bool = True  # anonymous reads of public repos (and public metadata of gated ones)
    access_log: bool = False
    # stream: resolve GETs send the bytes; presigned: with blobs in S3, a 302 to a presigned URL of the object
    redirect: str = "stream"
    presigned_expiry: float = 300.0  # seconds a presigned URL stays valid
    pull_through: PullThroughConfig = PullThroughConfig()
    enabled: bool = False  # the file has a serve: section, so `hubmirror run` starts the server


@dataclass(frozen=True)
class GcConfig:
    # Two earlier commits per ref: a job that resolved a revision before the last two syncs still finds it,
    # and a store synced every 6 hours keeps about half a day of history, not a year of it.
    keep_previous: int = 2
    grace: float = 3600.0  # unused blobs younger than this stay (an upload may be waiting for its commit)


@dataclass(frozen=True)
class StoreConfig:
    """Where the blobs are: ``url`` an ``s3://bucket/prefix`` (``endpoint_url``: an S3-compatible service);
    None is ``home/blobs``."""

    url: str | None = None
    endpoint_url: str | None = None


@dataclass(frozen=True)
class IndexConfig:
    """Where the index is: ``url`` names a PostgreSQL database (may hold a password: never shown); None is
    ``home/index.sqlite``."""

    url: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Config:
    path: Path | None
    home: Path
    upstream: UpstreamConfig
    sync: SyncConfig
    repos: tuple[RepoSpec, ...]
    watch: tuple[WatchSpec, ...]
    serve: ServeConfig
    gc: GcConfig = GcConfig()
    index: IndexConfig = IndexConfig()
    store: StoreConfig = StoreConfig()

    @property
    def backends(self) -> Backends:
        """Where this config puts the index and the blobs."""
        return Backends(self.index.url, self.store.url, self.store.endpoint_url)

    @property
    def lock_path(self) -> Path:
        """``hubmirror.lock`` beside the config file (in the current directory if there is no file)."""
        base = self.path.parent if self.path is not None else Path.cwd()
        return base / LOCK_FILENAME

    def select(self, names: Sequence[str]) -> tuple[RepoSpec, ...]:
        """Return the repos (in config order) whose repo id is in ``names``.

        Raises ConfigError for a name the config does not list.
        """
        listed = list(dict.fromkeys(spec.repo for spec in self.repos))
        for name in names:
            if name not in listed:
                more = f", ... ({len(listed) - 10} more)" if len(listed) > 10 else ""
                shown = ", ".join(listed[:10]) + more
                raise ConfigError(
                    f"repo {name!r} is not listed in repos: (listed: {shown})",
                    file=str(self.path) if self.path is not None else None,
                )
        wanted = set(names)
        return tuple(spec for spec in self.repos if spec.repo in wanted)
