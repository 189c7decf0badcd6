"""Helpers for the ``hubmirror serve`` tests and benchmark: fill a home with ``hubmirror sync`` from the fake
upstream, run ``hubmirror serve`` as a subprocess on a free port, and run the real ``huggingface_hub`` client
in subprocesses pointed at it with ``HF_ENDPOINT``.

Nothing here talks to the network beyond 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from conftest import MINILM, run_cli, write_config
from hubserver import HubServer, add_minilm, make_small_files, minilm_dir
from prockit import clean_env, free_port

MANY = "org/many-files"
DATASET = "org/tiny-data"
TAG_WITH_SLASH = "release/1.0"
TOKEN = "serve-secret-token"
RESULT_MARK = "@@RESULT@@"
CANARY = b"CANARY-5f1e0c9a-never-serve-this-file\n"
DATASET_CARD = b"---\nlicense: cc-by-4.0\ntask_categories:\n- text-classification\n---\n# tiny data\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Site:
    """A home filled by ``hubmirror sync``, and what it is known to contain."""

    root: Path
    home: Path
    config: Path
    upstream: HubServer
    minilm_main: str = ""
    minilm_v1: str = ""
    many_sha: str = ""
    dataset_sha: str = ""
    files: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)  # (repo, commit) → files

    def blob(self, data: bytes) -> Path:
        """Where the store keeps these bytes (see hubmirror.paths.blob_relpath)."""
        digest = sha256(data)
        return self.home / "blobs" / "sha256" / digest[:2] / digest

    def write_config(self, name: str, **serve: Any) -> Path:
        """Another config over the same home (e.g. with a different ``serve.token``)."""
        extra = {"serve": serve} if serve else {}
        return write_config(self.root / name, self.upstream.url, self.home, self._repos, **extra)

    _repos: list[dict[str, Any]] = field(default_factory=list)


def read_tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (symlinks followed) by its POSIX relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def minilm_files() -> dict[str, bytes]:
    base = minilm_dir()
    return {
        p.relative_to(base).as_posix(): p.read_bytes()
        for p in sorted(base.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def build_site(root: Path, *, minilm: bool = True, many: int = 600, token: str | None = TOKEN) -> Site:
    """Start the fake upstream, commit the test repos, and ``hubmirror sync`` them into ``root/home``.

    * MiniLM: ``v1.0`` (and ``release/1.0``) tag the first commit; ``main`` is a later commit whose README
      differs and which adds ``extra.txt``;
    * ``org/many-files``: ``many`` small files in nested folders (tree pagination);
    * dataset ``org/tiny-data``: a card, a CSV and an LFS file.
    The upstream keeps running (the benchmark compares against it); call ``site.upstream.stop()``.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "canary.txt").write_bytes(CANARY)  # next to the home: must never be served
    up = HubServer(root / "upstream").start()
    site = Site(root, root / "home", root / "hubmirror.yaml", up)
    repos: list[dict[str, Any]] = []
    if minilm:
        files = minilm_files()
        site.minilm_v1 = add_minilm(up)
        up.tag(MINILM, "v1.0", site.minilm_v1)
        up.tag(MINILM, TAG_WITH_SLASH, site.minilm_v1)
        newer = {"README.md": files["README.md"] + b"\nSecond revision of this card.\n", "extra.txt": b"only on main\n"}
        site.minilm_main = up.commit(MINILM, newer, message="second revision")
        site.files[(MINILM, site.minilm_v1)] = files
        site.files[(MINILM, site.minilm_main)] = {**files, **newer}
        repos.append({"repo": MINILM, "revisions": ["main", "v1.0", TAG_WITH_SLASH]})
    if many:
        files = make_small_files(many, seed=7)
        site.many_sha = up.commit(MANY, files, message="many files")
        site.files[(MANY, site.many_sha)] = files
        repos.append({"repo": MANY})
    threshold, up.lfs_threshold = up.lfs_threshold, 4096
    data = {
        "README.md": DATASET_CARD,
        "train.csv": b"text,label\nhello,1\nworld,0\n",
        "data/train-00000.bin": os.urandom(50_000),
    }
    site.dataset_sha = up.commit(DATASET, data, repo_type="dataset", message="data")
    up.lfs_threshold = threshold
    site.files[(DATASET, site.dataset_sha)] = data
    repos.append({"repo": DATASET, "type": "dataset"})
    site._repos = repos
    serve = {"token": token} if token else {}
    write_config(site.config, up.url, site.home, repos, **({"serve": serve} if serve else {}))
    r = run_cli("-c", str(site.config), "sync", timeout=240)
    if r.returncode != 0:
        up.stop()
        raise AssertionError(f"hubmirror sync failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return site


class ServeProcess:
    """``python -m hubmirror -c CONFIG serve --port P`` in a subprocess; stopped by its PID."""

    def __init__(self, config: Path, log: Path, *, extra_env: dict[str, str] | None = None) -> None:
        self.config, self.log_path, self.extra_env = config, log, extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServeProcess:
        for _attempt in range(3):  # the free port may be taken between probe and bind: retry
            self.port = free_port()
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "hubmirror", "-c", str(self.config), "serve", "--port", str(self.port)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=clean_env(**self.extra_env),
                )
            if self._wait_ready(timeout):
                return self
            self.stop()
        raise AssertionError(f"hubmirror serve did not start; log:\n{self.log()}")

    def _wait_ready(self, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if httpx2.get(self.url + "/", timeout=1.0).status_code < 500:  # up (the page may want a token)
                    return True
            except httpx2.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_PRELUDE = """
import json, sys
def _emit(value):
    sys.stdout.flush()
    print({mark!r} + json.dumps(value, default=str), flush=True)
try:
    result = None
{body}
    _emit({{"ok": True, "result": result}})
except BaseException as exc:
    resp = getattr(exc, "response", None)
    _emit({{"ok": False, "error": type(exc).__name__, "mro": [c.__name__ for c in type(exc).__mro__],
           "status": getattr(resp, "status_code", None), "message": str(exc)}})
"""


@dataclass
class ClientResult:
    ok: bool
    result: Any = None
    error: str | None = None
    mro: list[str] = field(default_factory=list)
    status: int | None = None
    message: str = ""
    stderr: str = ""

    def raised(self, name: str) -> bool:
        return not self.ok and name in self.mro


def hf_client(code: str, endpoint: str, cache: Path, *, timeout: float = 180, **env: str) -> ClientResult:
    """Run ``code`` in a fresh Python with the real client pointed at ``endpoint`` (env read at import).

    The code sets ``result`` (JSON-serialisable); an exception comes back as its class name, MRO, HTTP status
    and message.
    """
    body = textwrap.indent(textwrap.dedent(code).strip("\n"), "    ")
    script = _PRELUDE.format(mark=RESULT_MARK, body=body)
    cache.mkdir(parents=True, exist_ok=True)
    full_env = clean_env(
        HF_ENDPOINT=endpoint,
        HF_HUB_CACHE=str(cache),
        HF_HOME=str(cache.parent / "hf-home"),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        DISABLE_SAFETENSORS_CONVERSION="1",
        TOKENIZERS_PARALLELISM="false",
        **env,
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=full_env, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            data = json.loads(line[len(RESULT_MARK) :])
            return ClientResult(stderr=proc.stderr, **data)
    raise AssertionError(f"client crashed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")


# Client code: ``embed(source)`` loads config, tokenizer and model with transformers from ``source`` (a repo id
# through HF_ENDPOINT, or a folder) and returns (config, mean-pooled embeddings of ``SENTENCES``); run with
# tests/ on PYTHONPATH (for minilm_dir, the packaged files to compare with).
EMBED_MINILM = """
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer
from hubserver import minilm_dir
SENTENCES = ["The mirror answers like the Hub.", "Ein zweiter Satz, etwas länger als der erste."]
def embed(source):
    config = AutoConfig.from_pretrained(source)
    tok = AutoTokenizer.from_pretrained(source)
    model = AutoModel.from_pretrained(source).eval()
    batch = tok(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return config, (hidden * mask).sum(1) / mask.sum(1)
"""


def serve_site(site: Site) -> Iterator[ServeProcess]:
    """The body of a module's ``server`` fixture: ``hubmirror serve`` over ``site``, checked alive at the end."""
    with ServeProcess(site.config, site.root / "serve.log") as proc:
        yield proc
        assert proc.proc is not None and proc.proc.poll() is None, f"serve died:\n{proc.log()}"
