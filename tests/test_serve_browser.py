"""serve's pages in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by
Selenium with the driver and browser named explicitly, so Selenium Manager never looks for them online):
search, filter, open a repo, read the rendered card, switch revision, download files, log in to see a private
repo, the status page, log out. Screenshots go to the test's tmp dir."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pagekit import (
    BIG,
    CARD_MODEL,
    CONFIG_JSON,
    DATASET,
    ODD_BYTES,
    SECRET,
    TOKEN,
    PageSite,
    build_page_site,
    serve_page_site,
)
from servekit import ServeProcess

pytestmark = pytest.mark.timeout(300)

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> PageSite:
    return build_page_site(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def server(site: PageSite) -> Iterator[ServeProcess]:
    yield from serve_page_site(site)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("chromium and chromium-driver are not installed: run scripts/setup.sh --test (as root)")
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager reach for the network
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(arg)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(30)
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        driver.downloads = downloads  # type: ignore[attr-defined]
        yield driver
    finally:
        driver.quit()  # ends chromedriver and the browser it started


def shot(driver: object, path: Path) -> None:
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 2000, path


def wait_for(predicate: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting in the browser")


def test_browse_search_repo_download_login_status(
    browser: object, server: ServeProcess, site: PageSite, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = browser
    css = lambda sel: d.find_element(By.CSS_SELECTOR, sel)  # noqa: E731
    csss = lambda sel: d.find_elements(By.CSS_SELECTOR, sel)  # noqa: E731
    results = lambda: {a.text for a in csss("a.repo")}  # noqa: E731

    # -- search page, anonymous: public repos only
    d.get(server.url + "/")
    assert d.title.startswith("Search")
    assert {CARD_MODEL, BIG, DATASET} <= results() and SECRET not in results()
    shot(d, tmp_path / "01-search.png")

    box = d.find_element(By.NAME, "q")
    box.send_keys("card")
    box.submit()
    wait_for(lambda: "q=card" in d.current_url)
    assert results() == {CARD_MODEL, BIG}

    d.find_element(By.NAME, "q").clear()
    Select(d.find_element(By.NAME, "pipeline_tag")).select_by_value("text-classification")
    css("form.search button").click()
    wait_for(lambda: "pipeline_tag=text-classification" in d.current_url)
    assert results() == {CARD_MODEL}
    shot(d, tmp_path / "02-filtered.png")

    # -- the repo page: card, metadata, refs, files, snippet
    d.find_element(By.LINK_TEXT, CARD_MODEL).click()
    wait_for(lambda: d.current_url.endswith("/" + CARD_MODEL))
    assert css("#card h1").text == "Card Title" and css("#card h2").text == "Usage"
    assert [td.text for td in csss("#card table td")] == ["cell1", "cell2"]
    assert css("#card pre code").text == 'print("hello from the card")'
    assert csss("script") == [] and csss("#card img") == []  # raw HTML stayed text
    assert "pwned" not in d.title and "<script>" in css("#card").text
    hrefs = [a.get_attribute("href") or "" for a in csss("#card a")]
    assert hrefs == [f"{server.url}/{CARD_MODEL}/resolve/{site.shas['main']}/config.json"]
    assert "[js link](javascript:" in css("#card").text
    assert "apache-2.0" in css("#metadata").text and "text-classification" in css("#metadata").text
    assert {"main", "dev"} <= {a.text for a in csss("#branches a")} and [a.text for a in csss("#tags a")] == ["v1.0"]
    assert css("#endpoint").text == f"export HF_ENDPOINT={server.url}"
    assert 'AutoModel.from_pretrained("org/card-model")' in css("#snippet").text
    assert "from transformers import AutoModel, AutoTokenizer" in css("#snippet").text
    sizes = {
        row.find_elements(By.TAG_NAME, "td")[0].text: row.find_elements(By.TAG_NAME, "td")[1].text
        for row in csss("#files tr")
        if row.find_elements(By.TAG_NAME, "td")
    }
    assert sizes["model.safetensors LFS"] == "20.0 kB" and sizes["config.json"] == "41 B"
    shot(d, tmp_path / "03-repo.png")

    # -- the revision selector
    Select(d.find_element(By.ID, "revision")).select_by_value("v1.0")
    css("#revision").submit()
    wait_for(lambda: "revision=v1.0" in d.current_url)
    assert css("#commit").text == site.shas["v1.0"]
    assert "model.safetensors" not in css("#files").text and 'revision="v1.0"' in css("#snippet").text
    d.find_element(By.LINK_TEXT, "main").click()
    wait_for(lambda: css("#commit").text == site.shas["main"])

    # -- downloads: a JSON file the browser shows, a binary it saves, a path that needs encoding
    d.find_element(By.LINK_TEXT, "config.json").click()
    wait_for(lambda: "/resolve/" in d.current_url)
    assert d.find_element(By.TAG_NAME, "body").text.strip() == CONFIG_JSON.decode().strip()
    d.back()
    d.find_element(By.LINK_TEXT, "sub dir/we ird#name?.txt").click()
    wait_for(lambda: "we%20ird%23name%3F.txt" in d.current_url)
    assert d.find_element(By.TAG_NAME, "body").text.strip() == ODD_BYTES.decode().strip()
    d.back()
    d.find_element(By.LINK_TEXT, "model.safetensors").click()
    target = d.downloads / "model.safetensors"  # type: ignore[attr-defined]
    wait_for(lambda: target.exists() and target.stat().st_size == len(site.weights), timeout=30)
    assert target.read_bytes() == site.weights

    # -- a dataset's page
    d.get(f"{server.url}/datasets/{DATASET}")
    assert 'load_dataset("org/page-data")' in css("#snippet").text

    # -- a private repo: a 404 page anonymously, there after logging in through the form
    d.get(f"{server.url}/{SECRET}")
    assert css("main h1").text == "Not found"
    shot(d, tmp_path / "04-private-404.png")
    d.find_element(By.LINK_TEXT, "log in").click()
    wait_for(lambda: d.current_url.endswith("/-/login"))
    token = d.find_element(By.NAME, "token")
    token.send_keys("wrong-token")
    token.submit()
    wait_for(lambda: bool(csss("#login-error")))
    shot(d, tmp_path / "05-login-error.png")
    token = d.find_element(By.NAME, "token")
    token.send_keys(TOKEN)
    token.submit()
    wait_for(lambda: d.current_url.rstrip("/") == server.url)
    assert SECRET in results() and "admin" in css("header").text
    assert d.get_cookie("hubmirror_session")["httpOnly"] is True  # type: ignore[index]
    d.find_element(By.LINK_TEXT, SECRET).click()
    wait_for(lambda: d.current_url.endswith("/" + SECRET))
    assert "private" in css("h1").text and "export HF_TOKEN=" in css("#endpoint").text
    shot(d, tmp_path / "06-private-repo.png")

    # -- the status page
    d.find_element(By.LINK_TEXT, "status").click()
    wait_for(lambda: d.current_url.endswith("/-/status"))
    assert css("main h1").text == "Mirror status" and "org/never-existed" in css("#failures").text
    assert "blobs in the store" in css("#disk").text
    shot(d, tmp_path / "07-status.png")

    # -- log out: the private repo is gone again, the status page asks for a login
    css("header form button").click()
    wait_for(lambda: bool(csss("header a[href='/-/login']")))
    assert SECRET not in results()
    d.get(server.url + "/-/status")
    wait_for(lambda: "/-/login" in d.current_url)
