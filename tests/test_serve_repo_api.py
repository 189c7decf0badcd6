"""The repo API beyond downloads, through ``hubmirror serve`` with the real clients (``HfApi`` and the ``hf``
CLI): typed refs and every revision spelling, branches and tags, commit history, pull requests and
discussions, settings, move and delete. Each test works on its own repos under ``team/``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import run_cli, write_config
from hubserver import HubServer, make_small_files
from prockit import clean_env
from servekit import ServeProcess, hf_client

pytestmark = pytest.mark.timeout(240)

ADMIN, CI, READER, GUEST = "admin-secret", "ci-secret", "reader-secret", "guest-secret"
MIRRORED = "org/upstream-model"
USERS = [
    {"name": "ci-bot", "token": CI, "write": ["team/*"]},
    {"name": "auditor", "token": READER, "read_private": True},
    {"name": "guest", "token": GUEST},
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("repo-api")
    with HubServer(root / "upstream") as up:
        up.commit(MIRRORED, {"config.json": b'{"a": 1}', **make_small_files(3, seed=1)})
        config = write_config(
            root / "hubmirror.yaml",
            up.url,
            root / "home",
            [{"repo": MIRRORED}],
            serve={"token": ADMIN, "users": USERS},
        )
        r = run_cli("-c", str(config), "sync")
        assert r.returncode == 0, r.stdout + r.stderr
        yield {"root": root, "config": config, "home": root / "home"}


@pytest.fixture(scope="module")
def server(site: dict[str, Any]) -> Iterator[ServeProcess]:
    with ServeProcess(site["config"], site["root"] / "serve.log") as proc:
        yield proc
        assert proc.proc is not None and proc.proc.poll() is None, f"serve died:\n{proc.log()}"


# Prepended to every client script: the outcome of a call, as the client classifies it.
STATUS = """
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
def status(call):
    try:
        call()
        return "ok"
    except RevisionNotFoundError:
        return "RevisionNotFound"
    except RepositoryNotFoundError:
        return "RepoNotFound"
    except HfHubHTTPError as exc:
        return exc.response.status_code
"""


def client(server: ServeProcess, tmp_path: Path, code: str, token: str = CI) -> Any:
    r = hf_client(STATUS + textwrap.dedent(code), server.url, tmp_path / "hf-cache", HF_TOKEN=token)
    assert r.ok, r
    return r.result


def hf_cli(server: ServeProcess, tmp_path: Path, *args: str, token: str = CI) -> subprocess.CompletedProcess[str]:
    """The ``hf`` command line of huggingface_hub, pointed at serve."""
    env = clean_env(
        HF_ENDPOINT=server.url,
        HF_TOKEN=token,
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    hf = Path(sys.executable).with_name("hf")
    return subprocess.run([str(hf), *args], capture_output=True, text=True, env=env, timeout=120)


def test_branches_tags_and_every_revision_spelling(site: dict[str, Any], server: ServeProcess, tmp_path: Path) -> None:
    res = client(
        server,
        tmp_path,
        """
        from huggingface_hub import HfApi, hf_hub_download
        api = HfApi()
        api.create_repo("team/refs-demo")
        first = api.upload_file(path_or_fileobj=b"one", path_in_repo="a.txt", repo_id="team/refs-demo",
                                commit_message="add a")
        api.create_branch("team/refs-demo", branch="dev")
        again = status(lambda: api.create_branch("team/refs-demo", branch="dev"))
        api.create_branch("team/refs-demo", branch="dev", exist_ok=True)
        dev = api.upload_file(path_or_fileobj=b"two", path_in_repo="a.txt", repo_id="team/refs-demo",
                              revision="dev", commit_message="change a on dev")
        api.create_tag("team/refs-demo", tag="v1", revision="dev", tag_message="first release")
        api.create_branch("team/refs-demo", branch="feature/x", revision="v1")
        refs = api.list_repo_refs("team/refs-demo", include_pull_requests=True)
        spelled = {
            rev: open(hf_hub_download("team/refs-demo", "a.txt", revision=rev), "rb").read().decode()
            for rev in ["main", "dev", "v1", "refs/heads/dev", "refs/tags/v1", "refs/heads/main", "feature/x"]
        }
        info_sha = api.model_info("team/refs-demo", revision="refs/tags/v1").sha
        result = {
            "first": first.oid, "dev": dev.oid, "again": again,
            "branches": sorted((b.name, b.ref, b.target_commit) for b in refs.branches),
            "tags": [(t.name, t.ref, t.target_commit) for t in refs.tags],
            "prs": refs.pull_requests, "converts": refs.converts, "spelled": spelled, "info_sha": info_sha,
            "tag_again": status(lambda: api.create_tag("team/refs-demo", tag="v1", revision="main")),
            "tag_over_branch": status(lambda: api.create_tag("team/refs-demo", tag="dev", revision="main")),
            "tag_unknown_rev": status(lambda: api.create_tag("team/refs-demo", tag="v9", revision="nope")),
            "bad_name": status(lambda: api.create_branch("team/refs-demo", branch="../evil")),
            "refs_name": status(lambda: api.create_branch("team/refs-demo", branch="refs/pr/7")),
            "delete_main": status(lambda: api.delete_branch("team/refs-demo", branch="main")),
            "delete_missing": status(lambda: api.delete_branch("team/refs-demo", branch="nope")),
            "delete_tag_as_branch": status(lambda: api.delete_branch("team/refs-demo", branch="v1")),
        }
        api.delete_tag("team/refs-demo", tag="v1")
        api.delete_branch("team/refs-demo", branch="dev")
        after = api.list_repo_refs("team/refs-demo")
        result["after"] = sorted(b.name for b in after.branches) + [t.name for t in after.tags]
        result["gone"] = status(lambda: hf_hub_download("team/refs-demo", "a.txt", revision="dev", force_download=True))
        """,
    )
    first, dev = res["first"], res["dev"]
    assert res["again"] == 409
    assert res["branches"] == [
        ["dev", "refs/heads/dev", dev],
        ["feature/x", "refs/heads/feature/x", dev],
        ["main", "refs/heads/main", first],
    ]
    assert res["tags"] == [["v1", "refs/tags/v1", dev]] and res["prs"] == [] and res["converts"] == []
    assert res["spelled"] == {
        "main": "one",
        "dev": "two",
        "v1": "two",
        "refs/heads/dev": "two",
        "refs/tags/v1": "two",
        "refs/heads/main": "one",
        "feature/x": "two",
    }
    assert res["info_sha"] == dev
    assert res["tag_again"] == 409 and res["tag_over_branch"] == 409 and res["tag_unknown_rev"] == "RevisionNotFound"
    assert res["bad_name"] == 400 and res["refs_name"] == 400
    assert res["delete_main"] == 403 and res["delete_missing"] == "RevisionNotFound"
    assert res["delete_tag_as_branch"] == "RevisionNotFound"
    assert res["after"] == ["feature/x", "main"]
    assert res["gone"] == "RevisionNotFound"
    # the HF-cache view's refs follow (deleted ones removed), and offline resolve takes every spelling
    refs = site["home"] / "hf" / "hub" / "models--team--refs-demo" / "refs"
    assert sorted(p.relative_to(refs).as_posix() for p in refs.rglob("*") if p.is_file()) == ["feature/x", "main"]
    for revision in ("refs/heads/feature/x", "feature/x", dev[:7]):
        out = run_cli("--home", str(site["home"]), "resolve", "team/refs-demo", "a.txt", "-r", revision)
        assert out.returncode == 0 and Path(out.stdout.strip()).read_text() == "two", (revision, out.stderr)


def test_writers_only_for_ref_changes_and_mirrors_refuse(server: ServeProcess, tmp_path: Path) -> None:
    res = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import HfApi
        writer, reader = HfApi(token="{CI}"), HfApi(token="{READER}")
        writer.create_repo("team/guarded")
        result = {{
            "reader_branch": status(lambda: reader.create_branch("team/guarded", branch="x")),
            "reader_tag": status(lambda: reader.create_tag("team/guarded", tag="t")),
            "reader_settings": status(lambda: reader.update_repo_settings("team/guarded", private=True)),
            "reader_delete": status(lambda: reader.delete_repo("team/guarded")),
            "mirror_branch": status(lambda: writer.create_branch("{MIRRORED}", branch="x")),
            "admin_mirror_tag": status(lambda: HfApi(token="{ADMIN}").create_tag("{MIRRORED}", tag="t")),
            "anonymous": status(lambda: HfApi(token=False).create_branch("team/guarded", branch="y")),
        }}
        """,
    )
    assert res == {
        "reader_branch": 403,
        "reader_tag": 403,
        "reader_settings": 403,
        "reader_delete": 403,
        "mirror_branch": 403,
        "admin_mirror_tag": 403,
        "anonymous": 401,
    }


def test_commit_history_with_titles_authors_dates_and_pages(server: ServeProcess, tmp_path: Path) -> None:
    res = client(
        server,
        tmp_path,
        """
        from huggingface_hub import HfApi
        api = HfApi()
        api.create_repo("team/history")
        oids = [api.upload_file(path_or_fileobj=f"v{i}".encode(), path_in_repo="f.txt", repo_id="team/history",
                                commit_message=f"change {i}", commit_description=f"body {i}").oid
                for i in range(55)]
        commits = api.list_repo_commits("team/history")
        formatted = api.list_repo_commits("team/history", formatted=True)[0]
        info = api.model_info("team/history")
        tree = list(api.list_repo_tree("team/history", expand=True))
        result = {
            "oids": oids,
            "commits": [[c.commit_id, c.title, c.message, c.authors, c.created_at.isoformat()] for c in commits],
            "formatted": formatted.formatted_title,
            "last_modified": info.last_modified.isoformat(), "created_at": info.created_at.isoformat(),
            "tree": {e.path: [e.last_commit.oid, e.last_commit.title] for e in tree},
        }
        """,
    )
    commits = res["commits"]
    assert len(commits) == 56  # 55 uploads and the repo's first commit: more than one page of 50
    assert [c[0] for c in commits[:55]] == res["oids"][::-1]
    assert commits[0][1:4] == ["change 54", "body 54", ["ci-bot"]] and commits[-1][1] == "initial commit"
    dates = [c[4] for c in commits]
    assert dates == sorted(dates, reverse=True) and not dates[-1].startswith("1970")
    assert res["formatted"] == "change 54"
    assert res["last_modified"] == commits[0][4] and res["created_at"] <= commits[-1][4]
    assert res["tree"]["f.txt"] == [res["oids"][-1], "change 54"]
    assert res["tree"][".gitattributes"] == [commits[-1][0], "initial commit"]


def test_pull_requests_from_a_reader_merged_by_a_writer(server: ServeProcess, tmp_path: Path) -> None:
    res = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import HfApi, hf_hub_download
        writer, reader = HfApi(token="{CI}"), HfApi(token="{READER}")
        writer.create_repo("team/prs")
        writer.upload_file(path_or_fileobj=b"base\\n", path_in_repo="doc.txt", repo_id="team/prs")
        pr = reader.upload_file(path_or_fileobj=b"base\\nproposed line\\n", path_in_repo="doc.txt",
                                repo_id="team/prs", create_pr=True, commit_message="Improve doc",
                                commit_description="please merge")
        more = reader.upload_file(path_or_fileobj=bytes(range(256)) * 10, path_in_repo="w.bin",
                                  repo_id="team/prs", revision=pr.pr_revision, commit_message="add weights")
        reader.comment_discussion("team/prs", pr.pr_num, "one more thing")
        reader.rename_discussion("team/prs", pr.pr_num, "Improve the doc")
        details = writer.get_discussion_details("team/prs", pr.pr_num)
        main_before = open(hf_hub_download("team/prs", "doc.txt", force_download=True)).read()
        pr_file = open(hf_hub_download("team/prs", "doc.txt", revision=pr.pr_revision)).read()
        result = {{
            "pr_url": pr.pr_url, "pr_num": pr.pr_num, "pr_revision": pr.pr_revision,
            "guest_push": status(lambda: HfApi(token="{GUEST}").upload_file(
                path_or_fileobj=b"x", path_in_repo="x", repo_id="team/prs", revision=pr.pr_revision)),
            "reader_merge": status(lambda: reader.merge_pull_request("team/prs", pr.pr_num)),
            "is_pr": details.is_pull_request, "status": details.status, "title": details.title,
            "author": details.author, "target": details.target_branch, "conflicts": details.conflicting_files,
            "events": [[e.type, e.author] for e in details.events],
            "diff": details.diff, "main_before": main_before, "pr_file": pr_file,
        }}
        writer.merge_pull_request("team/prs", pr.pr_num, comment="thanks")
        merged = writer.get_discussion_details("team/prs", pr.pr_num)
        result.update(
            merged_status=merged.status, merge_commit=merged.merge_commit_oid,
            main_after=open(hf_hub_download("team/prs", "doc.txt", force_download=True)).read(),
            main_sha=writer.model_info("team/prs").sha,
            has_weights="w.bin" in writer.list_repo_files("team/prs"),
            merge_again=status(lambda: writer.merge_pull_request("team/prs", pr.pr_num)),
            refs=[p.ref for p in writer.list_repo_refs("team/prs", include_pull_requests=True).pull_requests],
        )
        # a conflicting pull request is not merged; an empty draft is closed and reopened
        a = reader.upload_file(path_or_fileobj=b"A", path_in_repo="doc.txt", repo_id="team/prs", create_pr=True)
        writer.upload_file(path_or_fileobj=b"B", path_in_repo="doc.txt", repo_id="team/prs")
        result["conflict_files"] = writer.get_discussion_details("team/prs", a.pr_num).conflicting_files
        result["conflict_merge"] = status(lambda: writer.merge_pull_request("team/prs", a.pr_num))
        draft = reader.create_pull_request("team/prs", title="Draft idea")
        closed = reader.change_discussion_status("team/prs", draft.num, "closed", comment="not now")
        disc = reader.create_discussion("team/prs", title="A question", description="why?")
        result.update(
            draft_status=draft.status, closed=closed.new_status, disc_is_pr=disc.is_pull_request,
            listed=[[d.num, d.is_pull_request, d.status] for d in writer.get_repo_discussions("team/prs")],
            open_prs=[d.num for d in writer.get_repo_discussions(
                "team/prs", discussion_type="pull_request", discussion_status="open")],
            by_reader=len(list(writer.get_repo_discussions("team/prs", author="auditor"))),
            mirror_pr=status(lambda: reader.upload_file(path_or_fileobj=b"x", path_in_repo="x",
                                                        repo_id="{MIRRORED}", create_pr=True)),
            mirror_discussion=reader.create_discussion("{MIRRORED}", title="Is this the latest?").num,
            anonymous=status(lambda: HfApi(token=False).create_discussion("team/prs", title="hi")),
        )
        """,
        token=READER,
    )
    assert res["pr_num"] == 1 and res["pr_revision"] == "refs/pr/1"
    assert res["pr_url"] == f"{server.url}/team/prs/discussions/1"
    assert res["guest_push"] == 403 and res["reader_merge"] == 403
    assert res["is_pr"] and res["status"] == "open" and res["title"] == "Improve the doc"
    assert res["author"] == "auditor" and res["target"] == "refs/heads/main" and res["conflicts"] == []
    assert res["events"] == [
        ["comment", "auditor"],
        ["commit", "auditor"],
        ["commit", "auditor"],
        ["comment", "auditor"],
        ["title-change", "auditor"],
    ]
    assert "+proposed line" in res["diff"] and "Binary files a/w.bin and b/w.bin differ" in res["diff"]
    assert res["main_before"] == "base\n" and res["pr_file"] == "base\nproposed line\n"
    assert res["merged_status"] == "merged" and res["merge_commit"] == res["main_sha"]
    assert res["main_after"] == "base\nproposed line\n" and res["has_weights"]
    assert res["merge_again"] == 400 and res["refs"] == ["refs/pr/1"]
    assert res["conflict_files"] == ["doc.txt"] and res["conflict_merge"] == 409
    assert res["draft_status"] == "draft" and res["closed"] == "closed" and res["disc_is_pr"] is False
    assert res["listed"] == [[4, False, "open"], [3, True, "closed"], [2, True, "open"], [1, True, "merged"]]
    assert res["open_prs"] == [2] and res["by_reader"] == 4
    assert res["mirror_pr"] == 403 and res["mirror_discussion"] == 1 and res["anonymous"] == 401


def test_settings_move_and_delete(site: dict[str, Any], server: ServeProcess, tmp_path: Path) -> None:
    res = client(
        server,
        tmp_path,
        f"""
        from huggingface_hub import HfApi, hf_hub_download
        api, anonymous, auditor = HfApi(token="{CI}"), HfApi(token=False), HfApi(token="{READER}")
        api.create_repo("team/old-name")
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="team/old-name")
        api.update_repo_settings("team/old-name", private=True)
        hidden = status(lambda: anonymous.model_info("team/old-name"))
        seen = auditor.model_info("team/old-name").private
        api.update_repo_settings("team/old-name", private=False, gated="manual")
        gated = anonymous.model_info("team/old-name").gated
        api.update_repo_settings("team/old-name", gated=False)
        api.move_repo("team/old-name", "team/new-name")
        moved = api.model_info("team/old-name").id
        old_file = open(hf_hub_download("team/old-name", "x.txt")).read()
        api.create_repo("team/taken")
        result = {{
            "hidden": hidden, "seen": seen, "gated": gated, "moved": moved, "old_file": old_file,
            "move_onto_existing": status(lambda: api.move_repo("team/new-name", "team/taken")),
            "move_outside_rights": status(lambda: api.move_repo("team/new-name", "other/place")),
        }}
        api.delete_repo("team/new-name")
        result.update(
            after_delete=status(lambda: api.model_info("team/new-name")),
            old_after_delete=status(lambda: api.model_info("team/old-name")),
            delete_missing=status(lambda: api.delete_repo("team/new-name")),
            delete_missing_ok=status(lambda: api.delete_repo("team/new-name", missing_ok=True)),
            delete_mirror=status(lambda: HfApi(token="{ADMIN}").delete_repo("{MIRRORED}")),
            recreate=str(api.create_repo("team/new-name")),
        )
        """,
    )
    assert res["hidden"] == "RepoNotFound" and res["seen"] is True and res["gated"] == "manual"
    assert res["moved"] == "team/new-name" and res["old_file"] == "x"
    assert res["move_onto_existing"] == 409 and res["move_outside_rights"] == 403
    assert res["after_delete"] == "RepoNotFound" and res["old_after_delete"] == "RepoNotFound"
    assert res["delete_missing"] == "RepoNotFound" and res["delete_missing_ok"] == "ok"
    assert res["delete_mirror"] == 403 and res["recreate"] == f"{server.url}/team/new-name"
    # the HF-cache view follows: the deleted repo's old folder went, the recreated one is there
    view = site["home"] / "hf" / "hub"
    names = sorted(p.name for p in view.iterdir() if p.name.startswith("models--team--"))
    assert "models--team--old-name" not in names and "models--team--new-name" in names


def test_hf_cli_branches_tags_settings_discussions_move_delete(server: ServeProcess, tmp_path: Path) -> None:
    client(server, tmp_path, 'from huggingface_hub import HfApi\nHfApi().create_repo("team/cli")')
    for args in (
        ["repos", "branch", "create", "team/cli", "dev"],
        ["repos", "tag", "create", "team/cli", "v1.0", "-m", "first"],
    ):
        r = hf_cli(server, tmp_path, *args)
        assert r.returncode == 0, r.stdout + r.stderr
    (tmp_path / "up.txt").write_text("uploaded to a new branch\n")
    r = hf_cli(server, tmp_path, "upload", "team/cli", str(tmp_path / "up.txt"), "up.txt", "--revision", "feature")
    assert r.returncode == 0, r.stdout + r.stderr
    r = hf_cli(server, tmp_path, "repos", "tag", "list", "team/cli", "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "v1.0" in r.stdout
    refs = httpx2.get(f"{server.url}/api/models/team/cli/refs", headers={"Authorization": f"Bearer {CI}"}).json()
    assert sorted(b["name"] for b in refs["branches"]) == ["dev", "feature", "main"]
    assert [t["name"] for t in refs["tags"]] == ["v1.0"]
    steps = [
        ["repos", "branch", "delete", "team/cli", "dev"],
        ["repos", "settings", "team/cli", "--private"],
        ["discussions", "create", "team/cli", "--title", "Fix typo", "--pull-request"],
        ["discussions", "create", "team/cli", "--title", "Question", "--body", "why?"],
        ["discussions", "comment", "team/cli", "2", "--body", "because"],
        ["discussions", "close", "team/cli", "1", "--yes"],
        ["repos", "move", "team/cli", "team/cli-moved"],
    ]
    for args in steps:
        r = hf_cli(server, tmp_path, *args)
        assert r.returncode == 0, (args, r.stdout + r.stderr)
    r = hf_cli(server, tmp_path, "discussions", "list", "team/cli-moved", "--status", "all", "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Fix typo" in r.stdout and "Question" in r.stdout
    r = hf_cli(server, tmp_path, "discussions", "info", "team/cli", "2")  # the old name still resolves
    assert r.returncode == 0 and "because" in r.stdout, r.stdout + r.stderr
    auth = {"Authorization": f"Bearer {CI}"}
    info = httpx2.get(f"{server.url}/api/models/team/cli-moved", headers=auth).json()
    assert info["private"] is True and info["id"] == "team/cli-moved"
    assert httpx2.get(f"{server.url}/api/models/team/cli-moved").status_code == 401  # private: not for anonymous
    r = hf_cli(server, tmp_path, "repos", "delete", "team/cli-moved", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert httpx2.get(f"{server.url}/api/models/team/cli-moved", headers=auth).status_code == 404


def test_xet_token_routes_answer_with_a_hint(server: ServeProcess) -> None:
    for route in ("xet-read-token/main", "xet-write-token/main"):
        r = httpx2.get(f"{server.url}/api/models/team/any/{route}")
        assert r.status_code == 501 and r.headers["x-error-code"] == "XetNotSupported"
        assert "HF_HUB_DISABLE_XET=1" in r.json()["error"]


def test_hostile_repo_api_input(server: ServeProcess) -> None:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with httpx2.Client(base_url=server.url, headers=auth, timeout=30) as http:
        assert http.post("/api/repos/create", json={"name": "hostile"}).status_code == 200
        cases = [
            ("POST", "/api/models/admin/hostile/branch/x", b"[1]", 400),  # body not an object
            ("POST", "/api/models/admin/hostile/branch/x", json.dumps({"startingPoint": 5}).encode(), 400),
            ("POST", "/api/models/admin/hostile/branch/" + "a" * 300, b"{}", 400),
            ("POST", "/api/models/admin/hostile/branch/a%00b", b"{}", 400),
            ("POST", "/api/models/admin/hostile/tag/main", json.dumps({"tag": ["x"]}).encode(), 400),
            ("PUT", "/api/models/admin/hostile/settings", json.dumps({"private": "yes"}).encode(), 400),
            ("PUT", "/api/models/admin/hostile/settings", json.dumps({"owner": "me"}).encode(), 400),
            ("PUT", "/api/models/admin/hostile/settings", json.dumps({"gated": "sometimes"}).encode(), 400),
            ("POST", "/api/repos/move", json.dumps({"fromRepo": "admin/hostile", "toRepo": "../x"}).encode(), 400),
            ("DELETE", "/api/repos/delete", json.dumps({"name": None}).encode(), 400),
            ("POST", "/api/models/admin/hostile/discussions", json.dumps({"title": " "}).encode(), 400),
            ("POST", "/api/models/admin/hostile/discussions", json.dumps({"title": "x" * 600}).encode(), 400),
            ("GET", "/api/models/admin/hostile/discussions/99999999999999", b"", 404),
            ("GET", "/api/models/admin/hostile/discussions?p=x", b"", 400),
            ("GET", "/api/models/admin/hostile/commits/main?p=-1", b"", 400),
            ("POST", "/api/models/admin/hostile/discussions/1/explode", b"{}", 404),
            ("PATCH", "/api/models/admin/hostile/branch/x", b"{}", 405),
        ]
        for method, path, body, expected in cases:
            r = http.request(method, path, content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == expected, (method, path, r.status_code, r.text)
            assert "error" in r.json()


def test_a_new_repo_starts_with_gitattributes_and_real_dates(server: ServeProcess, tmp_path: Path) -> None:
    res = client(
        server,
        tmp_path,
        """
        from huggingface_hub import HfApi
        api = HfApi()
        api.create_repo("team/fresh")
        info = api.model_info("team/fresh", files_metadata=True)
        listed = [m for m in api.list_models(author="team") if m.id == "team/fresh"][0]
        result = {"files": [s.rfilename for s in info.siblings], "created": info.created_at.isoformat(),
                  "modified": info.last_modified.isoformat(), "listed": listed.created_at.isoformat()}
        """,
    )
    assert res["files"] == [".gitattributes"]
    assert not res["created"].startswith("1970") and res["created"] == res["listed"]
    assert res["modified"] >= res["created"][:19]


@pytest.mark.slow
def test_transformers_push_to_hub_without_namespace_then_from_pretrained(server: ServeProcess, tmp_path: Path) -> None:
    """The tutorial's own calls: ``model.push_to_hub("dummy-model")`` lands under the token's user."""
    code = """
        import torch
        from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel
        from huggingface_hub import whoami
        torch.manual_seed(0)
        model = BertModel(BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32))
        model.push_to_hub("dummy-model")
        user = whoami()["name"]
        back = AutoModel.from_pretrained(f"{user}/dummy-model")
        same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), back.state_dict().values()))
        result = {"user": user, "same": same, "class": type(back).__name__}
    """
    res = client(server, tmp_path, code, token=ADMIN)
    assert res == {"user": "admin", "same": True, "class": "BertModel"}
    r = httpx2.get(f"{server.url}/api/models/dummy-model", headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 404  # nothing was left behind without a namespace


def test_an_xet_client_is_told_to_disable_xet(server: ServeProcess, tmp_path: Path) -> None:
    """With ``hf_xet`` installed and HF_HUB_DISABLE_XET unset, the client uploads LFS files over Xet, which
    serve does not speak: the upload fails at once (no retries, no hang) on the Xet token route. hf_xet shows
    only the status and URL, not our message, so the server log says what the client must set."""
    code = f"""
import json
from huggingface_hub import HfApi
api = HfApi(token={CI!r})
api.create_repo("team/xet", exist_ok=True)
try:
    api.upload_file(path_or_fileobj=bytes(range(256)) * 100, path_in_repo="w.bin", repo_id="team/xet")
    print(json.dumps({{"ok": True}}))
except Exception as exc:
    print(json.dumps({{"ok": False, "error": type(exc).__name__, "message": str(exc)}}))
"""
    env = clean_env(HF_ENDPOINT=server.url, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outcome["ok"] is False and "xet-write-token" in outcome["message"] and "501" in outcome["message"]
    assert "HF_HUB_DISABLE_XET=1" in server.log()
