"""The one exception tree of hubmirror; each class carries the CLI exit code it maps to.

    HubMirrorError                      1  anything we raise on purpose
    ├── ConfigError                     3  bad config or lock file (names file, line, key path)
    ├── UpstreamError                   5  the upstream hub said no
    │   ├── RepoNotFoundError              unknown repo (or private and no/insufficient token)
    │   ├── RevisionNotFoundError          unknown branch, tag or commit
    │   ├── EntryNotFoundError             unknown file in a revision
    │   ├── AccessDeniedError              401/403
    │   │   └── GatedRepoError             accept the conditions on the repo page first
    │   ├── ConflictError                  412: the branch moved since we diffed (push diffs again)
    │   ├── UpstreamUnavailableError    6  network errors, 5xx, 429 after bounded retries
    │   │   └── UpstreamUnreachableError       no connection at all (DNS, refused): the run stops asking
    │   └── UpstreamProtocolError          an answer that does not follow the Hub API
    ├── IntegrityError                  7  bytes do not match the hash or size they promised
    ├── UnsafePathError                 8  a path that would escape its root ('..', absolute, NUL, ...)
    ├── NotMirroredError                4  a local lookup missed
    │   ├── RepoNotMirroredError           the repo is not in the mirror
    │   ├── RevisionNotMirroredError       the repo is, that revision is not (or a sha prefix is ambiguous)
    │   └── FileNotMirroredError           the revision is, that file is not
    ├── LockTimeoutError                9  another hubmirror process holds the lock too long
    ├── RefDivergedError               11  a ref would have moved over a commit only this store has (kept)
    ├── Interrupted                   130  stopped by SIGINT/SIGTERM (partial downloads are kept)
    └── StoreError                     10  the store cannot be written (disk full, newer layout, permissions)

Messages say what happened, to what, and what to do. The CLI prints ``str(error)`` and exits with
``error.exit_code``; serve maps the same classes to HTTP status + ``X-Error-Code``.
"""

from __future__ import annotations


class HubMirrorError(Exception):
    """Base of every error hubmirror raises on purpose."""

    exit_code = 1


class ConfigError(HubMirrorError):
    """The config (or lock) file is malformed; the message names file, line and key path."""

    exit_code = 3

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, key: str | None = None
    ) -> None:
        self.file, self.line, self.key = file, line, key
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        if key:
            where += f"{key}: "
        super().__init__(where + message)


class UpstreamError(HubMirrorError):
    """The upstream hub answered with an error we do not retry."""

    exit_code = 5

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None) -> None:
        self.status, self.url = status, url
        super().__init__(message)


class RepoNotFoundError(UpstreamError):
    pass


class RevisionNotFoundError(UpstreamError):
    pass


class EntryNotFoundError(UpstreamError):
    pass


class AccessDeniedError(UpstreamError):
    pass


class GatedRepoError(AccessDeniedError):
    pass


class ConflictError(UpstreamError):
    pass


class UpstreamUnavailableError(UpstreamError):
    exit_code = 6


class UpstreamUnreachableError(UpstreamUnavailableError):
    """Not a single connection could be made (DNS failure, refused, connect timeouts): asking again for the
    next repo would only wait as long for the same answer."""


class UntrustedCertificateError(UpstreamUnavailableError):
    """A TLS certificate this machine does not trust (self-signed, or signed by a CA outside the trust
    store): retrying cannot help, and other hosts (or plain-http ones) may still answer."""


class UpstreamProtocolError(UpstreamError):
    pass


class IntegrityError(HubMirrorError):
    """Bytes did not match the size or hash they were promised; nothing was stored."""

    exit_code = 7


class UnsafePathError(HubMirrorError):
    """A path from outside (upstream listing, request, upload) would escape its root."""

    exit_code = 8


class NotMirroredError(HubMirrorError):
    """A local lookup missed: the repo, revision or file is not in the mirror."""

    exit_code = 4


class RepoNotMirroredError(NotMirroredError):
    pass


class RevisionNotMirroredError(NotMirroredError):
    pass


class FileNotMirroredError(NotMirroredError):
    pass


class LockTimeoutError(HubMirrorError):
    exit_code = 9


class RefDivergedError(HubMirrorError):
    """A mirrored ref and this store's own commit went different ways: the local commit is kept."""

    exit_code = 11


class Interrupted(HubMirrorError):
    """Work stopped on request (SIGINT/SIGTERM); what was half done is kept for the next run."""

    exit_code = 130


class StoreError(HubMirrorError):
    """The store cannot be used or written: disk full, a newer layout version, permissions."""

    exit_code = 10
