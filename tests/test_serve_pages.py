"""serve's HTML pages over real HTTP on loopback: search, repo pages, status, login — and what an attacker
would try: markup in cards, metadata, refs and paths; ``javascript:`` links; the login cookie on the API;
foreign form posts; oversized bodies and READMEs. The browser test (test_serve_browser.py) clicks through
the same site in Chromium."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx2
import pytest
from pagekit import (
    BIG,
    CARD_MODEL,
    CONFIG_JSON,
    DATASET,
    EVIL,
    GATED,
    MANY_FILES,
    ODD_BYTES,
    ODD_PATH,
    READER,
    SECRET,
    TOKEN,
    PageSite,
    build_page_site,
    serve_page_site,
)
from servekit import ServeProcess

from hubmirror.index import PushBook, open_index
from hubmirror.serve.web.card import render_card, strip_front_matter

pytestmark = pytest.mark.timeout(240)

CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> PageSite:
    site = build_page_site(tmp_path_factory.mktemp("pages"))
    index = open_index(site.home / "index.sqlite")
    book = PushBook(index)
    book.enqueue("/srv/outbox/public-folder", "org/pushed-public", "model", "main", time.time() + 3600)
    book.enqueue("/srv/outbox/secret-folder", SECRET, "model", "main", time.time() + 3600)
    index.close()
    return site


@pytest.fixture(scope="module")
def server(site: PageSite) -> Iterator[ServeProcess]:
    yield from serve_page_site(site)


@pytest.fixture
def http(server: ServeProcess) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=server.url, timeout=30) as client:
        yield client


def login(http: httpx2.Client, token: str) -> str:
    """Log in through the form; returns the cookie header value the browser would keep."""
    r = http.post("/-/login", data={"token": token, "next": "/"})
    assert r.status_code == 303, r.text
    return r.headers["set-cookie"].split(";")[0]


def security_headers_ok(r: httpx2.Response) -> None:
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"


# ============================================================================================== rendering
def test_markdown_renderer_keeps_markup_inert_and_refuses_unsafe_links() -> None:
    out = render_card(
        "---\nlicense: x\n---\n# T\n<script>alert(1)</script>\n\n[a](javascript:alert(1)) [b](JAVASCRIPT:x) "
        "[c](vbscript:x) [d](data:text/html,<b>) ![e](javascript:alert(1)) [f](https://example.invalid/x) "
        "[g](docs/a.md) [h](#anchor) <a href='javascript:x'>raw</a>\n",
        "/org/m/resolve/abc/",
    )
    assert "<script" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "<a href='javascript" not in out and "&lt;a href='javascript:x'&gt;" in out
    hrefs = re.findall(r'(?:href|src)="([^"]*)"', out)
    assert hrefs == ["https://example.invalid/x", "/org/m/resolve/abc/docs/a.md", "#anchor"], hrefs
    assert "license: x" not in out and "<h1>T</h1>" in out
    assert strip_front_matter("---\na: 1\n---\nbody") == "body"
    assert strip_front_matter("no header\n---\n") == "no header\n---\n"


def test_every_page_sends_the_security_headers(http: httpx2.Client) -> None:
    for path in ("/", f"/{CARD_MODEL}", "/-/login", "/org/nope", "/-/status", f"/datasets/{DATASET}"):
        r = http.get(path)
        assert r.status_code in (200, 303, 404), (path, r.status_code)
        security_headers_ok(r)
        if r.status_code != 303:
            assert r.headers["content-type"].startswith("text/html"), path
            assert "<script" not in r.text.lower(), path


def test_repo_page_renders_the_card_and_escapes_its_hostile_parts(http: httpx2.Client, site: PageSite) -> None:
    page = http.get(f"/{CARD_MODEL}").text
    card = page[page.index('<article class="card" id="card">') : page.index("</article>")]
    assert "<h1>Card Title</h1>" in card and "<h2>Usage</h2>" in card
    assert "<table>" in card and "<td>cell1</td>" in card
    assert '<code class="language-python">print(&quot;hello from the card&quot;)' in card
    assert "<script" not in page and "&lt;script&gt;document.title = &quot;pwned-script&quot;" in card
    assert "<img" not in page and "onerror" not in re.sub(r"&lt;img.*?&gt;", "", card)
    assert 'href="javascript' not in page and 'href="data:' not in page
    assert f'<a href="/{CARD_MODEL}/resolve/{site.shas["main"]}/config.json">config file</a>' in card
    assert "license: apache-2.0" not in card  # the YAML header is shown as metadata, not as text
    meta = page[page.index('<table id="metadata">') :]
    assert "apache-2.0" in meta and "text-classification" in meta and "transformers" in meta and "en, fr" in meta
    assert "&lt;b&gt;bold-tag&lt;/b&gt;" in meta and "<b>bold-tag" not in page


def test_markup_in_card_metadata_is_escaped_on_search_and_repo_pages(http: httpx2.Client) -> None:
    for path in ("/", f"/{EVIL}", "/?q=evil"):
        page = http.get(path).text
        assert "<script" not in page and "<svg" not in page and "<i>fill-mask" not in page, path
    search = http.get("/").text
    assert '<option value="&quot;&gt;&lt;script&gt;document.title=&quot;pwned-meta&quot;&lt;/script&gt;">' in search
    repo = http.get(f"/{EVIL}").text
    assert "&lt;svg onload=alert(1)&gt;" in repo and "&lt;i&gt;fill-mask&lt;/i&gt;" in repo
    assert "nested" not in repo  # a mapping where a string belongs is left out, not dumped


# ============================================================================================== search
def test_search_filters_by_text_type_pipeline_library_and_license(http: httpx2.Client) -> None:
    def names(query: str) -> set[str]:
        r = http.get("/" + query)
        assert r.status_code == 200
        return set(re.findall(r'<a class="repo" href="[^"]*"><b>([^<]*)</b>', r.text))

    everyone = {CARD_MODEL, EVIL, GATED, DATASET, BIG}
    assert names("") == everyone
    assert names("?q=card") == {CARD_MODEL, BIG}
    assert names("?q=demo") == {CARD_MODEL}  # tags count
    assert names("?q=CARD+model") == {CARD_MODEL}
    assert names("?type=dataset") == {DATASET}
    assert names("?pipeline_tag=text-classification") == {CARD_MODEL}
    assert names("?library=transformers&license=apache-2.0") == {CARD_MODEL}
    assert names("?license=cc-by-4.0&type=model") == set()
    assert "No repo matches" in http.get("/?q=zzz-nothing").text
    page = http.get("/").text
    assert f"{MANY_FILES} files" in page and "4 files · 20.6 kB" in http.get("/?q=card-model").text


# ============================================================================================== repo page
def test_repo_page_lists_refs_files_sizes_and_download_links(http: httpx2.Client, site: PageSite) -> None:
    page = http.get(f"/{CARD_MODEL}").text
    branches = page[page.index('<table id="branches">') :].split("</table>")[0]
    tags = page[page.index('<table id="tags">') :].split("</table>")[0]
    assert ">main</a>" in branches and ">dev</a>" in branches and ">v1.0</a>" not in branches
    assert ">v1.0</a>" in tags and site.shas["v1.0"][:12] in tags
    assert f'id="commit">{site.shas["main"]}<' in page
    files = page[page.index('<table id="files">') :]
    assert 'model.safetensors</a> <span class="tag">LFS</span>' in files and "20.0 kB" in files
    odd = f"/{CARD_MODEL}/resolve/{site.shas['main']}/sub%20dir/we%20ird%23name%3F.txt"
    assert f'href="{odd}"' in files and ODD_PATH.replace("#", "#") in files
    assert http.get(odd).content == ODD_BYTES
    assert http.get(f"/{CARD_MODEL}/resolve/{site.shas['main']}/config.json").content == CONFIG_JSON


def test_revision_selector_shows_a_tag_a_branch_or_a_sha(http: httpx2.Client, site: PageSite) -> None:
    old = http.get(f"/{CARD_MODEL}?revision=v1.0").text
    assert f'id="commit">{site.shas["v1.0"]}<' in old and "model.safetensors" not in old
    assert '<option value="v1.0" selected>' in old
    assert "from_pretrained(&quot;org/card-model&quot;, revision=&quot;v1.0&quot;)" in old
    dev = http.get(f"/{CARD_MODEL}?revision=dev").text
    assert "dev-only.txt" in dev
    by_sha = http.get(f"/{CARD_MODEL}?revision={site.shas['v1.0'][:12]}")
    assert by_sha.status_code == 200 and f'id="commit">{site.shas["v1.0"]}<' in by_sha.text
    missing = http.get(f"/{CARD_MODEL}?revision=%3Cscript%3Enope")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "&lt;script&gt;nope" in missing.text and "<script>nope" not in missing.text
    security_headers_ok(missing)


def test_snippet_and_endpoint_line(http: httpx2.Client, server: ServeProcess) -> None:
    page = http.get(f"/{CARD_MODEL}").text
    assert f"export HF_ENDPOINT={server.url}\n" in page
    assert "from transformers import AutoModel, AutoTokenizer" in page
    assert "AutoModel.from_pretrained(&quot;org/card-model&quot;)" in page
    data = http.get(f"/datasets/{DATASET}").text
    assert "load_dataset(&quot;org/page-data&quot;)" in data and f"export HF_ENDPOINT={server.url}" in data
    assert "cc-by-4.0" in data
    assert http.get(f"/{DATASET}").status_code == 404  # a dataset is not a model


def test_big_readme_is_linked_not_rendered_and_long_file_lists_are_paged(http: httpx2.Client) -> None:
    started = time.monotonic()
    page = http.get(f"/{BIG}").text
    assert time.monotonic() - started < 5
    assert "too large to show here" in page and "[x[x[x" not in page
    assert f"{MANY_FILES} files" in page and "page 1 of 2" in page
    assert page.count('class="download"') == 1000
    second = http.get(f"/{BIG}?revision=main&page=2").text
    assert "page 2 of 2" in second and second.count('<tr><td><a class="download"') == MANY_FILES - 1000
    assert http.get(f"/{BIG}?page=-1").status_code == 200 and http.get(f"/{BIG}?page=99999999999").status_code == 200


def test_gated_repo_page_shows_without_download_links_for_anonymous(http: httpx2.Client) -> None:
    page = http.get(f"/{GATED}").text
    assert "gated" in page and "config.json" in page and 'class="download"' not in page
    assert "/resolve/" not in page.split('<table id="files">')[1]
    cookie = login(http, TOKEN)
    assert 'class="download"' in http.get(f"/{GATED}", headers={"Cookie": cookie}).text


# ============================================================================================== privacy, login
def test_private_repo_is_absent_and_404s_as_a_page_until_login(http: httpx2.Client) -> None:
    assert SECRET not in http.get("/").text
    r = http.get(f"/{SECRET}")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html") and "log in" in r.text
    assert SECRET not in http.get("/?q=secret").text
    reader = login(http, READER)  # a user without read_private sees no more than anonymous
    assert http.get(f"/{SECRET}", headers={"Cookie": reader}).status_code == 404
    admin = login(http, TOKEN)
    assert SECRET in http.get("/", headers={"Cookie": admin}).text
    r = http.get(f"/{SECRET}", headers={"Cookie": admin})
    assert r.status_code == 200 and "private" in r.text and "export HF_TOKEN=" in r.text
    assert SECRET in http.get(f"/{SECRET}", headers={"Authorization": f"Bearer {TOKEN}"}).text


def test_login_form_cookie_attributes_and_wrong_token(http: httpx2.Client) -> None:
    form = http.get("/-/login")
    assert form.status_code == 200 and 'name="token"' in form.text and 'type="password"' in form.text
    wrong = http.post("/-/login", data={"token": "not-a-token"})
    assert wrong.status_code == 401 and "not one of this mirror&#x27;s tokens" in wrong.text
    assert "set-cookie" not in wrong.headers
    security_headers_ok(wrong)
    assert http.post("/-/login", data={}).status_code == 401
    ok = http.post("/-/login", data={"token": TOKEN, "next": "/-/status"})
    assert ok.status_code == 303 and ok.headers["location"] == "/-/status"
    cookie = ok.headers["set-cookie"]
    attrs = [a.strip() for a in cookie.split(";")]
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(attrs) and "Secure" not in attrs
    assert TOKEN not in cookie  # a value derived from the token, not the token
    for bad_next in ("//evil.invalid/x", "https://evil.invalid/", "/\\evil.invalid", "javascript:alert(1)"):
        r = http.post("/-/login", data={"token": TOKEN, "next": bad_next})
        assert r.headers["location"] == "/", bad_next
    logged = http.get("/", headers={"Cookie": attrs[0]}).text
    assert "admin" in logged and "log out" in logged
    out = http.post("/-/logout", headers={"Cookie": attrs[0]})
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]


def test_login_refuses_foreign_origin_and_oversized_bodies(http: httpx2.Client) -> None:
    r = http.post("/-/login", data={"token": TOKEN}, headers={"Origin": "http://evil.invalid"})
    assert r.status_code == 403 and "set-cookie" not in r.headers and r.headers["content-type"].startswith("text/html")
    r = http.post("/-/logout", headers={"Origin": "http://evil.invalid"})
    assert r.status_code == 403
    r = http.post(
        "/-/login", content=b"token=" + b"a" * 20_000, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 413
    assert http.get("/-/logout").status_code == 405  # logging out is a POST (a link or image cannot do it)


def test_the_login_cookie_is_never_accepted_by_the_api(http: httpx2.Client) -> None:
    cookie = login(http, TOKEN)
    for path in (f"/api/models/{SECRET}", "/api/whoami-v2", f"/{SECRET}/resolve/main/config.json"):
        r = http.get(path, headers={"Cookie": cookie})
        assert r.status_code == 401, (path, r.status_code)
    assert SECRET not in http.get("/api/models", headers={"Cookie": cookie}).text
    created = http.post("/api/repos/create", json={"name": "via-cookie", "type": "model"}, headers={"Cookie": cookie})
    assert created.status_code == 401
    assert http.get("/api/models/me/via-cookie").status_code == 401


def test_a_stale_cookie_browses_anonymously_with_a_notice(http: httpx2.Client) -> None:
    r = http.get("/", headers={"Cookie": "hubmirror_session=v1.0123456789abcdef"})
    assert r.status_code == 200 and "no longer valid" in r.text and SECRET not in r.text
    r = http.get(f"/{CARD_MODEL}", headers={"Cookie": "hubmirror_session=garbage"})
    assert r.status_code == 200 and "no longer valid" in r.text
    r = http.get(f"/{CARD_MODEL}", headers={"Cookie": f"hubmirror_session={TOKEN}"})  # the raw token is no cookie
    assert "no longer valid" in r.text


def test_unknown_bearer_token_on_a_page_is_an_html_401(http: httpx2.Client) -> None:
    r = http.get("/", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["content-type"].startswith("text/html")


# ============================================================================================== status
def test_status_needs_a_login_when_the_server_has_tokens(http: httpx2.Client) -> None:
    r = http.get("/-/status")
    assert r.status_code == 303 and r.headers["location"] == "/-/login?next=/-/status"
    page = http.get("/-/status", headers={"Cookie": login(http, TOKEN)}).text
    assert "org/never-existed" in page and "not found upstream" in page
    assert "partial" in page and "free on the store" in page and "blobs in the store" in page
    outbox = page[page.index('<table id="outbox">') :]
    assert "org/pushed-public@main" in outbox and f"{SECRET}@main" in outbox and "/srv/outbox/secret-folder" in outbox


def test_status_without_tokens_is_public_and_names_only_readable_repos(site: PageSite) -> None:
    with ServeProcess(site.open_config, site.root / "serve-open.log") as proc:
        with httpx2.Client(base_url=proc.url, timeout=30) as http:
            r = http.get("/-/status")
            assert r.status_code == 200
            assert SECRET not in r.text and "secret-folder" not in r.text and "/srv/outbox" not in r.text
            assert "org/pushed-public@main" not in r.text  # not in the index: could be private upstream
            assert "1 more in repos you may not see" in r.text and "2 more for repos you may not see" in r.text


# ============================================================================================== anonymous off
def test_anonymous_off_redirects_pages_to_login_and_the_api_still_says_401(site: PageSite) -> None:
    with ServeProcess(site.closed_config, site.root / "serve-closed.log") as proc:
        with httpx2.Client(base_url=proc.url, timeout=30) as http:
            r = http.get(f"/{CARD_MODEL}?revision=v1.0")
            assert r.status_code == 303 and r.headers["location"] == f"/-/login?next=/{CARD_MODEL}%3Frevision%3Dv1.0"
            assert http.get("/").headers["location"] == "/-/login?next=/"
            assert http.get("/-/login").status_code == 200
            assert http.get("/api/models").status_code == 401
            stale = http.get("/", headers={"Cookie": "hubmirror_session=old"})
            assert stale.status_code == 303
            assert "no longer valid" in http.get("/-/login", headers={"Cookie": "hubmirror_session=old"}).text
            ok = http.post("/-/login", data={"token": TOKEN, "next": f"/{CARD_MODEL}?revision=v1.0"})
            assert ok.status_code == 303 and ok.headers["location"] == f"/{CARD_MODEL}?revision=v1.0"
            cookie = ok.headers["set-cookie"].split(";")[0]
            page = http.get("/", headers={"Cookie": cookie})
            assert page.status_code == 200 and SECRET in page.text
            assert http.get("/api/models", headers={"Cookie": cookie}).status_code == 401


# ============================================================================================== routing
def test_api_and_file_routes_are_unchanged_beside_the_pages(http: httpx2.Client, site: PageSite) -> None:
    assert http.get("/api/models").headers["content-type"].startswith("application/json")
    assert http.get(f"/api/models/{CARD_MODEL}/revision/v1.0").json()["sha"] == site.shas["v1.0"]
    assert http.get(f"/{CARD_MODEL}/resolve/main/config.json").content == CONFIG_JSON
    assert http.head(f"/{CARD_MODEL}/resolve/main/model.safetensors").status_code == 200
    assert http.get("/-/nothing-here").status_code == 404
    assert http.get(f"/{CARD_MODEL}/tree/main").status_code == 404
    assert http.post(f"/{CARD_MODEL}").status_code == 405
