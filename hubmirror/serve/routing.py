"""Turn a raw request path into (endpoint, repo type, repo id, revision, sub-path) — on the RAW path.

Clients percent-encode revisions with no safe characters (``refs%2Fpr%2F1``), so routing must happen before
decoding; a framework router that decodes ``%2F`` first would make ``refs/pr/1`` ambiguous.

HTML pages: ``/`` (search), ``/-/status``, ``/-/login``, ``/-/logout`` (``/-/`` is for server pages: no
namespace is ``-``), and a repo's page at ``/[datasets/]{repo}`` like the Hub's.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from ..models import REPO_TYPE_BY_PLURAL

API_ACTIONS = {
    "revision",
    "tree",
    "paths-info",
    "refs",
    "commits",
    "preupload",
    "commit",
    "xet-read-token",
    "xet-write-token",
    "discussions",
    "lfs-files",
    "branch",
    "tag",
    "settings",
}
TYPE_SEGMENTS = {**REPO_TYPE_BY_PLURAL, "spaces": "space"}  # spaces are recognised, then refused
SERVER_PAGES = {"status": "page_status", "login": "page_login", "logout": "page_logout"}
NOT_NAMESPACES = {"api", "-", "lfs-upload", "lfs-verify", "datasets", "spaces", "models"}


@dataclass(frozen=True)
class Route:
    endpoint: str  # repo_info | tree | paths_info | refs | preupload | commit | resolve | list | whoami | health |
    #               create_repo | validate_yaml | lfs_batch | lfs_upload | lfs_verify | unknown |
    #               page_search | page_repo | page_status | page_login | page_logout
    repo_type: str = "model"
    repo_id: str = ""
    revision: str | None = None
    path: str = ""  # decoded sub-path (file or folder)


def _repo_and_rest(segments: list[str]) -> tuple[str, list[str]]:
    """Repo ids are ``name`` or ``ns/name``: the action keyword tells where the id ends (``ns/refs/tree/main``
    is the repo ``ns/refs``; ``gpt2/refs`` the refs of ``gpt2``)."""
    if len(segments) >= 3 and segments[2] in API_ACTIONS:
        return "/".join(segments[:2]), segments[2:]
    if len(segments) >= 2 and segments[1] in API_ACTIONS:
        return segments[0], segments[1:]
    return "/".join(segments[:2]), segments[2:]


def route(raw_path: str) -> Route:
    path = raw_path.split("?", 1)[0]
    if path in ("", "/"):
        return Route("page_search")
    segments = path.strip("/").split("/")
    if segments[0] == "-":
        return Route(SERVER_PAGES.get("/".join(segments[1:]), "unknown"))
    if segments[0] == "api":
        return _api_route(segments[1:])
    if segments[0] == "lfs-upload" and len(segments) == 3:
        return Route("lfs_upload", revision=segments[1], path=segments[2])
    if segments[0] == "lfs-verify" and len(segments) == 3:
        return Route("lfs_verify", revision=segments[1], path=segments[2])
    repo_type = "model"
    if segments[0] in ("datasets", "spaces"):
        repo_type, segments = TYPE_SEGMENTS[segments[0]], segments[1:]
    if "resolve" in segments:
        at = segments.index("resolve")
        if at in (1, 2) and len(segments) >= at + 3:
            return Route(
                "resolve",
                repo_type,
                "/".join(segments[:at]),
                unquote(segments[at + 1]),
                unquote("/".join(segments[at + 2 :])),
            )
    if len(segments) >= 5 and segments[-4:-1] == ["info", "lfs", "objects"] and segments[-1] == "batch":
        repo = "/".join(segments[:-4])
        if repo.endswith(".git"):
            return Route("lfs_batch", repo_type, repo[:-4])
    if 1 <= len(segments) <= 2 and all(segments) and segments[0] not in NOT_NAMESPACES:
        return Route("page_repo", repo_type, unquote("/".join(segments)))
    return Route("unknown")


def _api_route(segments: list[str]) -> Route:
    if segments == ["whoami-v2"]:
        return Route("whoami")
    if segments == ["health"]:
        return Route("health")
    if segments == ["repos", "create"]:
        return Route("create_repo")
    if segments == ["validate-yaml"]:
        return Route("validate_yaml")
    if segments == ["repos", "delete"]:
        return Route("delete_repo")
    if segments == ["repos", "move"]:
        return Route("move_repo")
    if not segments or segments[0] not in TYPE_SEGMENTS:
        return Route("unknown")
    repo_type = TYPE_SEGMENTS[segments[0]]
    rest = segments[1:]
    if not rest:
        return Route("list", repo_type)
    repo_id, action = _repo_and_rest(rest)
    if not action:
        return Route("repo_info", repo_type, repo_id)
    name, args = action[0], action[1:]
    revision = unquote(args[0]) if args else None
    sub = unquote("/".join(args[1:]))
    if name == "revision" and revision:
        return Route("repo_info", repo_type, repo_id, revision)
    if name == "tree" and revision:
        return Route("tree", repo_type, repo_id, revision, sub)
    if name in ("paths-info", "preupload", "commit") and revision:
        return Route(name.replace("-", "_"), repo_type, repo_id, revision)
    if name == "refs" and not args:
        return Route("refs", repo_type, repo_id)
    if name in ("commits", "branch", "tag") and len(args) == 1 and revision:
        return Route(name, repo_type, repo_id, revision)
    if name == "settings" and not args:
        return Route("settings", repo_type, repo_id)
    if name in ("xet-read-token", "xet-write-token"):
        return Route("xet_token", repo_type, repo_id, revision)
    if name == "discussions" and len(args) <= 2:
        # discussions | discussions/{num} | discussions/{num}/{comment|status|title|merge}
        return Route("discussions", repo_type, repo_id, revision, sub)
    return Route("unknown", repo_type, repo_id)
