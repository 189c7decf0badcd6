"""Tests for hubmirror.config: loading, discovery, environment handling and every error message."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from hubmirror.config import (
    DEFAULT_ENDPOINT,
    Config,
    IndexConfig,
    PullThroughConfig,
    RepoSpec,
    ServeConfig,
    ServeUser,
    StoreConfig,
    SyncConfig,
    UpstreamConfig,
    WatchSpec,
    default_home,
    find_config_path,
    load_config,
    parse_duration,
    validate_repo_id,
)
from hubmirror.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "hubmirror.example.yaml"
SECRET = "hf_SuperSecretTokenValue123"

Write = Callable[..., Path]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    def _write(text: str, name: str = "hubmirror.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return _write


def load_error(path: Path, env: Mapping[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, env={} if env is None else env)
    return info.value


def assert_error(error: ConfigError, path: Path, line: int | None, key: str | None, fragment: str) -> None:
    text = str(error)
    prefix = f"{path}:{line}: " if line else f"{path}: "
    if key:
        prefix += f"{key}: "
    assert text.startswith(prefix), text
    assert fragment in text, text
    assert (error.file, error.line, error.key) == (str(path), line, key)


# --- the example config ----------------------------------------------------------------------------------


def test_example_loads_with_env_and_exposes_every_key() -> None:
    env = {"HF_TOKEN": SECRET, "HUBMIRROR_TOKEN": "serve-secret", "CI_TOKEN": "ci-secret"}
    config = load_config(EXAMPLE, env=env)
    base = EXAMPLE.parent
    assert config.path == EXAMPLE
    assert config.home == base / "mirror"
    assert config.lock_path == base / "hubmirror.lock"
    assert config.upstream == UpstreamConfig(
        endpoint="https://huggingface.co", token=SECRET, timeout=60.0, max_retries=8, max_requests_per_5min=800
    )
    assert config.sync == SyncConfig(workers=8, every=6 * 3600.0, cron=None, jitter=300.0)
    assert config.repos == (
        RepoSpec(
            repo="sentence-transformers/all-MiniLM-L6-v2",
            type="model",
            revisions=("main",),
            allow_patterns=("*.json", "*.safetensors", "*.txt", "1_Pooling/*"),
            ignore_patterns=("*.onnx", "onnx/*", "openvino/*"),
            line=config.repos[0].line,
        ),
        RepoSpec(
            repo="stanfordnlp/imdb",
            type="dataset",
            revisions=("main",),
            allow_patterns=("plain_text/*",),
            ignore_patterns=None,
            line=config.repos[1].line,
        ),
    )
    lines = EXAMPLE.read_text().splitlines()
    for spec in config.repos:
        assert spec.line is not None
        assert f"repo: {spec.repo}" in lines[spec.line - 1]
    assert config.watch == (
        WatchSpec(
            path=base / "outbox" / "my-model",
            repo="my-org/my-model",
            type="model",
            revision="main",
            private=True,
            debounce=10.0,
            delete_remote=False,
            create=True,
            add_model_card=False,
            message="Checkpoint from the training cluster",
        ),
    )
    assert config.serve == ServeConfig(
        host="127.0.0.1",
        port=8080,
        token="serve-secret",
        enabled=True,
        users=(ServeUser("ci-bot", "ci-secret", ("my-org/*",), False),),
        anonymous=True,
        access_log=False,
    )


def test_example_loads_without_env_tokens_become_none() -> None:
    config = load_config(EXAMPLE, env={})
    assert config.upstream.token is None
    assert config.serve.token is None
    assert config.upstream.endpoint == DEFAULT_ENDPOINT


def test_example_mentions_every_key() -> None:
    text = EXAMPLE.read_text()
    keys = ["home", "upstream", "sync", "repos", "watch", "serve", "cron", "index", "store"]
    for cls in (UpstreamConfig, SyncConfig, RepoSpec, WatchSpec, ServeConfig, IndexConfig, StoreConfig):
        keys += [f.name for f in dataclasses.fields(cls) if f.name not in ("line", "enabled")]
    for key in keys:
        assert f"{key}:" in text, key


# --- defaults and valid values ---------------------------------------------------------------------------


def test_minimal_config_uses_defaults(write: Write, tmp_path: Path) -> None:
    path = write("""\
        repos:
          - repo: gpt2
        """)
    config = load_config(path, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert config.upstream == UpstreamConfig()
    assert config.sync == SyncConfig()
    assert config.serve == ServeConfig()
    assert config.watch == ()
    assert config.repos == (RepoSpec(repo="gpt2", line=2),)
    assert config.home == tmp_path / "cache" / "hubmirror"


def test_empty_sections_mean_defaults(write: Write) -> None:
    path = write("""\
        upstream:
        sync:
        serve:
        repos:
          - repo: org/a
            allow_patterns:
        """)
    config = load_config(path, env={})
    assert (config.upstream, config.sync, config.serve) == (UpstreamConfig(), SyncConfig(), ServeConfig(enabled=True))
    assert config.repos[0].allow_patterns is None


def test_values_are_converted(write: Write) -> None:
    path = write("""\
        upstream:
          endpoint: http://hub.internal:8000/api/
          timeout: 2.5
          max_retries: 0
        sync:
          workers: 128
          cron: "0 */6 * * *"
          jitter: 1h30m
        serve:
          port: 0
        repos:
          - repo: org/a
            revisions: [main, v1.0, refs/pr/1, 0123456789abcdef0123456789abcdef01234567]
            allow_patterns: "*.json"
            ignore_patterns: ["*.bin"]
          - repo: org/a
            type: dataset
        watch:
          - path: ~/ckpt
            repo: me/ckpt
            debounce: 0
            private: yes
        """)
    config = load_config(path, env={"HOME": "/home/tester"})
    assert config.upstream.endpoint == "http://hub.internal:8000/api"
    assert config.upstream.timeout == 2.5
    assert config.upstream.max_retries == 0
    assert config.sync == SyncConfig(workers=128, every=None, cron="0 */6 * * *", jitter=5400.0)
    assert config.serve.port == 0
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert config.repos[0].revisions == ("main", "v1.0", "refs/pr/1", sha)
    assert config.repos[0].allow_patterns == ("*.json",)
    assert config.repos[0].ignore_patterns == ("*.bin",)
    assert [(r.type, r.repo) for r in config.repos] == [("model", "org/a"), ("dataset", "org/a")]
    assert config.watch[0].path == Path("/home/tester/ckpt")
    assert config.watch[0].debounce == 0.0
    assert config.watch[0].private is True


@pytest.mark.parametrize(
    "text",
    [
        "watch:\n  - {path: ./out, repo: me/model}\n",
        "repos: []\nwatch:\n  - {path: ./out, repo: me/model}\n",
        "repos:\nserve:\n  port: 9000\n",
        "sync:\n  workers: 2\n",
    ],
)
def test_a_config_without_repos_is_valid(write: Write, text: str) -> None:
    """A training machine that only pushes or watches has nothing to mirror."""
    config = load_config(write(text))
    assert config.repos == ()


def test_serve_users_and_a_user_whose_token_is_unset_is_left_out(write: Write) -> None:
    path = write(
        "serve:\n  users:\n    - {name: ci, token: '${CI_TOKEN}', write: 'team/*'}\n"
        "    - {name: gone, token: '${UNSET_TOKEN}'}\n  anonymous: false\n  access_log: true\n"
    )
    serve = load_config(path, env={"CI_TOKEN": "ci-secret"}).serve
    assert serve.users == (ServeUser("ci", "ci-secret", ("team/*",), False),)
    assert (serve.anonymous, serve.access_log) == (False, True)
    assert "ci-secret" not in repr(serve)


def test_index_url_names_a_database_and_never_shows_its_password(write: Write) -> None:
    assert load_config(write("repos: []\n"), env={}).index.url is None  # index.sqlite in the home
    url = "postgresql://hubmirror:s3cret@db:5432/hubmirror?sslmode=require"
    config = load_config(write("index:\n  url: ${PG_URL}\n"), env={"PG_URL": url})
    assert config.index.url == url and "s3cret" not in repr(config)
    assert load_config(write("index:\n  url: postgres://db/x\n"), env={}).index.url == "postgres://db/x"
    several = "postgresql://hubmirror@db1:5432,db2:5433/hubmirror?target_session_attrs=read-write"
    assert load_config(write(f"index:\n  url: '{several}'\n"), env={}).index.url == several
    for bad in ("sqlite:///tmp/x", "http://db/x", "postgresql://u:s3cret@db:99999/x", "/var/lib/index.sqlite"):
        with pytest.raises(ConfigError) as caught:
            load_config(write(f"repos: []\nindex:\n  url: '{bad}'\n"), env={})
        message = str(caught.value)
        assert ":3: index.url: expected a PostgreSQL URL" in message and "s3cret" not in message, message
    with pytest.raises(ConfigError, match=r"index\.colour: unknown key"):
        load_config(write("index:\n  colour: blue\n"), env={})


def test_store_url_names_a_bucket_and_serve_may_presign_from_it(write: Write) -> None:
    default = load_config(write("repos: []\n"), env={})
    assert default.store == StoreConfig() and default.serve.redirect == "stream"  # blobs in the home
    text = "store:\n  url: s3://models/hub/\n  endpoint_url: http://minio:9000/\nserve:\n  redirect: presigned\n"
    config = load_config(write(text + "  presigned_expiry: 90s\n"), env={})
    assert config.store == StoreConfig("s3://models/hub", "http://minio:9000")
    assert config.backends.store_url == "s3://models/hub" and config.backends.endpoint_url == "http://minio:9000"
    assert (config.serve.redirect, config.serve.presigned_expiry) == ("presigned", 90.0)
    bad_cases = [
        ("store:\n  url: /var/blobs\n", ":2: store.url: expected s3://bucket/prefix"),
        ("store:\n  url: s3://b/a/../c\n", ":2: store.url: the prefix must not have"),
        ("store:\n  url: s3://key:secret@b/x\n", ":2: store.url: expected s3://bucket/prefix"),
        ("store:\n  url: s3://b\n  endpoint_url: http://k:secret@minio\n", ":3: store.endpoint_url: must not contain"),
        ("store:\n  url: s3://b\n  endpoint_url: ftp://minio\n", ":3: store.endpoint_url: expected an http"),
        ("store:\n  endpoint_url: http://minio\n", ":2: store.endpoint_url: needs store.url"),
        ("serve:\n  redirect: cdn\n", ":2: serve.redirect: expected stream (the default) or presigned"),
        ("serve:\n  redirect: presigned\n", ":2: serve.redirect: presigned needs the blobs in object storage"),
        ("store: {url: 's3://b'}\nserve:\n  presigned_expiry: 30d\n", ":3: serve.presigned_expiry: expected between"),
    ]
    for bad, fragment in bad_cases:
        with pytest.raises(ConfigError) as caught:
            load_config(write(bad), env={})
        assert fragment in str(caught.value) and "secret" not in str(caught.value), (bad, str(caught.value))


def test_pull_through_settings_and_their_errors(write: Write) -> None:
    assert load_config(write("repos: []\n"), env={}).serve.pull_through == PullThroughConfig()
    text = (
        "serve:\n  pull_through:\n    enabled: true\n    allow: ['org/*', 'dataset:data/*']\n    deny: org/secret\n"
        "    metadata_ttl: 5m\n    max_file_size: 512MiB\n    max_total_size: 2TB\n"
    )
    pull = load_config(write(text), env={}).serve.pull_through
    assert pull == PullThroughConfig(True, ("org/*", "dataset:data/*"), ("org/secret",), 300.0, 512 * 2**20, 2 * 10**12)
    assert pull.permits("model", "org/a") and pull.permits("dataset", "org/a") and pull.permits("dataset", "data/x")
    assert not pull.permits("model", "org/secret") and not pull.permits("model", "data/x")
    assert not pull.permits("model", "other/a")
    assert (
        load_config(write("serve:\n  pull_through: {enabled: true, deny: []}\n"), env={}).serve.pull_through.deny == ()
    )
    bad_cases = [
        ("serve:\n  pull_through: yes\n", ":2: serve.pull_through: expected a mapping"),
        (
            "serve:\n  pull_through: {enable: true}\n",
            "serve.pull_through.enable: unknown key (did you mean 'enabled'?)",
        ),
        ("serve:\n  pull_through: {allow: ['space:x/*']}\n", "serve.pull_through.allow[0]: unknown repo type 'space'"),
        ("serve:\n  pull_through: {allow: [1]}\n", "serve.pull_through.allow[0]: expected a string"),
        ("serve:\n  pull_through: {max_file_size: lots}\n", "serve.pull_through.max_file_size: expected a size"),
        ("serve:\n  pull_through: {max_total_size: -5}\n", "serve.pull_through.max_total_size: a size cannot be"),
        ("serve:\n  pull_through: {max_file_size: [1]}\n", "serve.pull_through.max_file_size: expected a size"),
        ("serve:\n  pull_through: {metadata_ttl: soon}\n", "serve.pull_through.metadata_ttl:"),
        ("serve:\n  pull_through: {metadata_ttl: 90d}\n", "serve.pull_through.metadata_ttl: must be at most"),
    ]
    for bad, fragment in bad_cases:
        with pytest.raises(ConfigError) as caught:
            load_config(write(bad), env={})
        assert fragment in str(caught.value), (bad, str(caught.value))


def test_config_is_frozen(write: Write) -> None:
    config = load_config(write("repos: [{repo: org/a}]\n"), env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.home = Path("/elsewhere")  # type: ignore[misc]
    assert isinstance(config.repos, tuple)
    assert isinstance(config.repos[0].revisions, tuple)


def test_lock_path_without_file_is_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = Config(
        path=None, home=tmp_path, upstream=UpstreamConfig(), sync=SyncConfig(), repos=(), watch=(), serve=ServeConfig()
    )
    assert config.lock_path == tmp_path / "hubmirror.lock"


def test_relative_config_path_gives_absolute_lock_path(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("repos: [{repo: org/a}]\n", name="sub/hubmirror.yaml")
    monkeypatch.chdir(tmp_path)
    config = load_config("sub/hubmirror.yaml", env={})
    assert config.path == tmp_path / "sub" / "hubmirror.yaml"
    assert config.lock_path == tmp_path / "sub" / "hubmirror.lock"


# --- select ---------------------------------------------------------------------------------------------


def test_select_returns_listed_repos_in_config_order(write: Write) -> None:
    config = load_config(
        write("""\
        repos:
          - repo: org/a
          - repo: org/b
          - repo: org/b
            type: dataset
          - repo: org/c
        """),
        env={},
    )
    assert [(s.type, s.repo) for s in config.select(["org/c", "org/b"])] == [
        ("model", "org/b"),
        ("dataset", "org/b"),
        ("model", "org/c"),
    ]
    assert config.select([]) == ()


def test_select_unknown_name_lists_known_ones(write: Write) -> None:
    path = write("repos: [{repo: org/a}, {repo: org/b}]\n")
    config = load_config(path, env={})
    with pytest.raises(ConfigError) as info:
        config.select(["org/a", "org/x"])
    expected = "repo 'org/x' is not listed in repos: (listed: org/a, org/b)"
    assert str(info.value) == f"{path.absolute()}: {expected}"


# --- discovery ------------------------------------------------------------------------------------------


def test_find_config_precedence(tmp_path: Path) -> None:
    (tmp_path / "hubmirror.yaml").write_text("repos: [{repo: a}]\n")
    (tmp_path / "from-env.yaml").write_text("repos: [{repo: b}]\n")
    (tmp_path / "explicit.yaml").write_text("repos: [{repo: c}]\n")
    env = {"HUBMIRROR_CONFIG": str(tmp_path / "from-env.yaml")}
    assert find_config_path("explicit.yaml", env=env, cwd=tmp_path) == tmp_path / "explicit.yaml"
    assert find_config_path(None, env=env, cwd=tmp_path) == tmp_path / "from-env.yaml"
    assert find_config_path(None, env={}, cwd=tmp_path) == tmp_path / "hubmirror.yaml"
    assert find_config_path(None, env={"HUBMIRROR_CONFIG": ""}, cwd=tmp_path) == tmp_path / "hubmirror.yaml"


def test_find_config_uses_process_cwd_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hubmirror.yaml").write_text("repos: [{repo: a}]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HUBMIRROR_CONFIG", raising=False)
    assert find_config_path() == tmp_path / "hubmirror.yaml"
    (tmp_path / "other.yaml").write_text("repos: [{repo: a}]\n")
    monkeypatch.setenv("HUBMIRROR_CONFIG", "other.yaml")
    assert find_config_path() == tmp_path / "other.yaml"


def test_find_config_explicit_missing(tmp_path: Path) -> None:
    (tmp_path / "hubmirror.yaml").write_text("repos: [{repo: a}]\n")  # not used as a fallback
    with pytest.raises(ConfigError) as info:
        find_config_path("nope.yaml", env={}, cwd=tmp_path)
    expected = "config file not found (given with -c/--config; fix the path)"
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: {expected}"


def test_find_config_explicit_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        find_config_path(tmp_path, env={}, cwd=tmp_path)


def test_find_config_env_missing(tmp_path: Path) -> None:
    (tmp_path / "hubmirror.yaml").write_text("repos: [{repo: a}]\n")
    with pytest.raises(ConfigError) as info:
        find_config_path(None, env={"HUBMIRROR_CONFIG": str(tmp_path / "gone.yaml")}, cwd=tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'gone.yaml'}: config file not found")
    assert "$HUBMIRROR_CONFIG" in str(info.value)


def test_find_config_nothing_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        find_config_path(None, env={}, cwd=tmp_path)
    message = str(info.value)
    for expected in ("-c/--config", "$HUBMIRROR_CONFIG", str(tmp_path / "hubmirror.yaml"), "hubmirror.example.yaml"):
        assert expected in message


def test_load_missing_file(tmp_path: Path) -> None:
    error = load_error(tmp_path / "missing.yaml")
    assert str(error) == f"{tmp_path / 'missing.yaml'}: config file not found"


# --- home -----------------------------------------------------------------------------------------------


def test_home_relative_to_config_dir(write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write("home: ../store\nrepos: [{repo: a}]\n", name="conf/hubmirror.yaml")
    monkeypatch.chdir(tmp_path.parent)  # the process cwd must not matter
    assert load_config(path, env={}).home == tmp_path / "conf" / ".." / "store"


def test_home_tilde_and_absolute(write: Write, tmp_path: Path) -> None:
    assert load_config(write("home: ~/m\nrepos: [{repo: a}]\n"), env={"HOME": "/h"}).home == Path("/h/m")
    absolute = tmp_path / "abs"
    assert load_config(write(f"home: {absolute}\nrepos: [{{repo: a}}]\n"), env={}).home == absolute


def test_hubmirror_home_overrides_file(write: Write, tmp_path: Path) -> None:
    path = write("home: ./from-file\nrepos: [{repo: a}]\n")
    assert load_config(path, env={"HUBMIRROR_HOME": str(tmp_path / "env-home")}).home == tmp_path / "env-home"
    assert load_config(path, env={"HUBMIRROR_HOME": ""}).home == tmp_path / "from-file"


def test_home_from_unset_variable_falls_back_to_default(write: Write, tmp_path: Path) -> None:
    path = write("home: ${MIRROR_HOME}\nrepos: [{repo: a}]\n")
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert load_config(path, env=env).home == tmp_path / "xdg" / "hubmirror"


def test_default_home(tmp_path: Path) -> None:
    assert default_home({"HUBMIRROR_HOME": str(tmp_path / "h")}) == tmp_path / "h"
    assert default_home({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "hubmirror"
    assert default_home({"HOME": "/home/u"}) == Path("/home/u/.cache/hubmirror")
    assert default_home({"HOME": "/home/u", "XDG_CACHE_HOME": "relative"}) == Path("/home/u/.cache/hubmirror")
    assert default_home({"HUBMIRROR_HOME": "~/x", "HOME": "/home/u"}) == Path("/home/u/x")


def test_default_home_reads_environment_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBMIRROR_HOME", str(tmp_path / "first"))
    assert default_home() == tmp_path / "first"
    monkeypatch.setenv("HUBMIRROR_HOME", str(tmp_path / "second"))
    assert default_home() == tmp_path / "second"


def test_load_config_reads_os_environ_at_call_time(write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write("upstream: {token: '${HF_TOKEN}'}\nrepos: [{repo: a}]\n")
    monkeypatch.setenv("HF_TOKEN", "first")
    assert load_config(path).upstream.token == "first"
    monkeypatch.setenv("HF_TOKEN", "second")
    assert load_config(path).upstream.token == "second"


def test_watch_path_relative_to_config_dir(write: Write, tmp_path: Path) -> None:
    path = write("repos: [{repo: a}]\nwatch: [{path: out/m, repo: me/m}]\n", name="d/hubmirror.yaml")
    assert load_config(path, env={}).watch[0].path == tmp_path / "d" / "out" / "m"


# --- environment expansion ------------------------------------------------------------------------------


def test_env_expansion(write: Write) -> None:
    path = write("""\
        upstream:
          endpoint: ${SCHEME:-https}://${HUB_HOST}/
          token: ${HF_TOKEN}
        serve:
          host: ${BIND:-0.0.0.0}
          port: ${PORT:-9000}
          token: "${SERVE_TOKEN:-}"
        repos:
          - repo: ${ORG}/model
            revisions: ["${REV:-main}", "literal-$${NOT_A_VAR}"]
        watch:
          - path: /w
            repo: me/m
            private: ${PRIVATE}
            message: "pushed by ${USER:-nobody}"
        """)
    env = {"HUB_HOST": "hub.local", "HF_TOKEN": SECRET, "ORG": "acme", "PRIVATE": "true", "BIND": ""}
    config = load_config(path, env=env)
    assert config.upstream.endpoint == "https://hub.local"
    assert config.upstream.token == SECRET
    assert config.serve == ServeConfig(host="0.0.0.0", port=9000, token=None, enabled=True)  # empty → default for :-
    assert config.repos[0].repo == "acme/model"
    assert config.repos[0].revisions == ("main", "literal-${NOT_A_VAR}")
    assert config.watch[0].private is True
    assert config.watch[0].message == "pushed by nobody"


def test_env_value_is_not_expanded_again(write: Write) -> None:
    path = write("upstream: {token: '${HF_TOKEN}'}\nrepos: [{repo: a}]\n")
    assert load_config(path, env={"HF_TOKEN": "x${OTHER}y"}).upstream.token == "x${OTHER}y"


def test_quoted_expansion_stays_a_string(write: Write) -> None:
    path = write("serve: {port: '${PORT}'}\nrepos: [{repo: a}]\n")
    error = load_error(path, {"PORT": "9000"})
    assert_error(error, path, 1, "serve.port", "expected an integer, got a string")


def test_token_with_trailing_newline_is_stripped(write: Write) -> None:
    path = write("upstream: {token: '${HF_TOKEN}'}\nrepos: [{repo: a}]\n")
    assert load_config(path, env={"HF_TOKEN": SECRET + "\n"}).upstream.token == SECRET


ENV_CASES = [
    pytest.param(
        "upstream:\n  endpoint: ${HUB_URL}\nrepos: [{repo: a}]\n",
        {},
        2,
        "upstream.endpoint",
        "environment variable 'HUB_URL' is not set",
        id="endpoint-unset",
    ),
    pytest.param(
        "upstream:\n  endpoint: ${HUB_URL}\nrepos: [{repo: a}]\n",
        {"HUB_URL": ""},
        2,
        "upstream.endpoint",
        "environment variable 'HUB_URL' is empty",
        id="endpoint-empty",
    ),
    pytest.param(
        "upstream:\n  endpoint: https://${HOST}:x/\nrepos: [{repo: a}]\n",
        {},
        2,
        "upstream.endpoint",
        "(environment variable 'HOST' is not set)",
        id="endpoint-partly-unset",
    ),
    pytest.param(
        "repos:\n  - repo: ${REPO}\n", {}, 2, "repos[0].repo", "environment variable 'REPO' is not set", id="repo-unset"
    ),
    pytest.param(
        "repos:\n  - repo: a\n    revisions: [main, '${REV}']\n",
        {},
        3,
        "repos[0].revisions[1]",
        "environment variable 'REV' is not set",
        id="revision-unset",
    ),
    pytest.param(
        "sync:\n  workers: ${WORKERS}\nrepos: [{repo: a}]\n",
        {},
        2,
        "sync.workers",
        "environment variable 'WORKERS' is not set",
        id="int-unset",
    ),
    pytest.param(
        "sync:\n  workers: ${WORKERS}\nrepos: [{repo: a}]\n",
        {"WORKERS": "many"},
        2,
        "sync.workers",
        "expected an integer, got a string",
        id="int-not-a-number",
    ),
    pytest.param(
        "repos: [{repo: a}]\nwatch:\n  - path: /w\n    repo: a\n    create: ${CREATE}\n",
        {},
        5,
        "watch[0].create",
        "environment variable 'CREATE' is not set",
        id="bool-unset",
    ),
    pytest.param(
        "repos: [{repo: a}]\nserve:\n  host: ${HOST\n",
        {},
        3,
        "serve.host",
        "malformed '${' reference",
        id="malformed-reference",
    ),
    pytest.param(
        "repos: [{repo: a}]\nserve:\n  host: ${1HOST}\n",
        {},
        3,
        "serve.host",
        "malformed '${' reference",
        id="bad-variable-name",
    ),
]


@pytest.mark.parametrize(("text", "env", "line", "key", "fragment"), ENV_CASES)
def test_env_errors(write: Write, text: str, env: dict[str, str], line: int, key: str, fragment: str) -> None:
    path = write(text)
    assert_error(load_error(path, env), path, line, key, fragment)


# --- secrets never appear in errors or reprs ------------------------------------------------------------

SECRET_CASES = [
    pytest.param(
        "upstream:\n  token: ${HF_TOKEN}\nrepos: [{repo: a}]\n",
        {"HF_TOKEN": "hf_ab cd" + SECRET},
        2,
        "upstream.token",
        "contains whitespace",
        id="token-with-space",
    ),
    pytest.param(
        "serve:\n  token: ${T}\nrepos: [{repo: a}]\n",
        {"T": SECRET + "\x01"},
        2,
        "serve.token",
        "control characters",
        id="serve-token-control-char",
    ),
    pytest.param(
        "upstream:\n  token: 12345678901234\nrepos: [{repo: a}]\n",
        {},
        2,
        "upstream.token",
        "expected a string, got an integer",
        id="token-int",
    ),
    pytest.param(
        f"upstream:\n  token: [{SECRET}]\nrepos: [{{repo: a}}]\n",
        {},
        2,
        "upstream.token",
        "expected a string, got a list",
        id="token-list",
    ),
    pytest.param(
        f"upstream:\n  endpoint: https://user:{SECRET}@hub.local\nrepos: [{{repo: a}}]\n",
        {},
        2,
        "upstream.endpoint",
        "must not contain credentials",
        id="endpoint-credentials",
    ),
    pytest.param(
        "upstream:\n  endpoint: ${T}\nrepos: [{repo: a}]\n",
        {"T": SECRET},
        2,
        "upstream.endpoint",
        "expected an http:// or https:// URL",
        id="token-as-endpoint",
    ),
    pytest.param(
        "upstream:\n  token: ${HF_TOKEN}\nrepos: [{repo: 'bad repo'}]\n",
        {"HF_TOKEN": SECRET},
        3,
        "repos[0].repo",
        "invalid repo id",
        id="unrelated-error",
    ),
]


@pytest.mark.parametrize(("text", "env", "line", "key", "fragment"), SECRET_CASES)
def test_secret_never_in_error(
    write: Write, text: str, env: dict[str, str], line: int, key: str, fragment: str
) -> None:
    path = write(text)
    error = load_error(path, env)
    assert_error(error, path, line, key, fragment)
    for secret in (SECRET, "12345678901234"):
        assert secret not in str(error)
        assert secret not in repr(error.args)


def test_digit_only_token_from_env_stays_a_string(write: Write) -> None:
    path = write("upstream:\n  token: ${T}\nrepos: [{repo: a}]\n")
    assert load_config(path, env={"T": "0012345"}).upstream.token == "0012345"


def test_secret_not_in_repr(write: Write) -> None:
    path = write("upstream: {token: '${A}'}\nserve: {token: '${B}'}\nrepos: [{repo: a}]\n")
    config = load_config(path, env={"A": SECRET, "B": SECRET + "2"})
    assert (config.upstream.token, config.serve.token) == (SECRET, SECRET + "2")
    assert SECRET not in repr(config)


# --- malformed files: file, line and key path in every message ------------------------------------------

MALFORMED = [
    # unknown keys
    pytest.param(
        "repos: [{repo: a}]\ncolour: red\n",
        2,
        "colour",
        "unknown key (expected one of: home, upstream, sync, repos, watch, serve, gc, index, store)",
        id="unknown-top",
    ),
    pytest.param("repo:\n  - repo: a\n", 1, "repo", "unknown key (did you mean 'repos'?)", id="unknown-top-typo"),
    pytest.param(
        "upstream:\n  endpont: https://x\nrepos: [{repo: a}]\n",
        2,
        "upstream.endpont",
        "unknown key (did you mean 'endpoint'?)",
        id="unknown-upstream",
    ),
    pytest.param(
        "repos:\n  - repo: a\n  - repo: b\n  - repo: c\n    revison: [main]\n",
        5,
        "repos[2].revison",
        "unknown key (did you mean 'revisions'?)",
        id="unknown-repo-key",
    ),
    pytest.param(
        "repos: [{repo: a}]\nwatch:\n  - path: /w\n    repo: a\n    debounse: 5s\n",
        5,
        "watch[0].debounse",
        "unknown key (did you mean 'debounce'?)",
        id="unknown-watch-key",
    ),
    pytest.param(
        "repos: [{repo: a}]\nsync:\n  workers: 2\n  evrey: 6h\n",
        4,
        "sync.evrey",
        "unknown key (did you mean 'every'?)",
        id="unknown-sync-key",
    ),
    pytest.param(
        "repos: [{repo: a}]\nserve:\n  prot: 1\n",
        3,
        "serve.prot",
        "unknown key (did you mean 'port'?)",
        id="unknown-serve-key",
    ),
    # wrong types
    pytest.param(
        "repos:\n  - repo: a\n    revisions: main\n",
        3,
        "repos[0].revisions",
        "expected a list of strings, got a string",
        id="string-for-list",
    ),
    pytest.param(
        "repos:\n  - repo: a\n    revisions: {main: 1}\n",
        3,
        "repos[0].revisions",
        "expected a list of strings, got a mapping",
        id="mapping-for-list",
    ),
    pytest.param("repos: org/a\n", 1, "repos", "expected a list of repo entries, got a string", id="string-for-repos"),
    pytest.param(
        "repos:\n  - org/a\n",
        2,
        "repos[0]",
        "expected a mapping with a 'repo' key, got a string",
        id="string-for-entry",
    ),
    pytest.param(
        "upstream:\n  - https://x\nrepos: [{repo: a}]\n",
        1,
        "upstream",
        "expected a mapping, got a list",
        id="list-for-mapping",
    ),
    pytest.param(
        "repos: [{repo: a}]\nwatch:\n  path: /w\n",
        2,
        "watch",
        "expected a list of watch entries, got a mapping",
        id="mapping-for-watch",
    ),
    pytest.param(
        "repos: [{repo: a}]\nsync:\n  workers: eight\n",
        3,
        "sync.workers",
        "expected an integer, got a string",
        id="string-for-int",
    ),
    pytest.param(
        "repos: [{repo: a}]\nsync:\n  workers: '8'\n",
        3,
        "sync.workers",
        "expected an integer, got a string",
        id="quoted-int",
    ),
    pytest.param(
        "repos: [{repo: a}]\nsync:\n  workers: true\n",
        3,
        "sync.workers",
        "expected an integer, got a boolean",
        id="bool-for-int",
    ),
    pytest.param(
        "repos: [{repo: a}]\nserve:\n  port: 80.5\n",
        3,
        "serve.port",
        "expected an integer, got a number",
        id="float-for-int",
    ),
    pytest.param(
        "repos: [{repo: a}]\nwatch:\n  - path: /w\n    repo: a\n    private: 1\n",
        5,
        "watch[0].private",
        "expected a boolean (true or false), got an integer",
        id="int-for-bool",
    ),
    pytest.param(
        "repos: [{repo: a}]\nwatch:\n  - path: /w\n    repo: a\n    delete_remote: 'yes'\n",
        5,
        "watch[0].delete_remote",
        "expected a boolean (true or false), got a string",
        id="string-for-bool",
    ),
    pytest.param(
        "repos:\n  - repo: a\n    revisions: [main, 1.0]\n",
        3,
        "repos[0].revisions[1]",
        "expected a string, got a number (quote it to make it a string)",
        id="number-revision",
    ),
    pytest.param("repos:\n  - repo: 42\n", 2, "repos[0].repo", "expected a string, got an integer", id="int-repo"),
    pytest.param("home: [a]\nrepos: [{repo: a}]\n", 1, "home", "expected a string, got a list", id="list-home"),
    pytest.param("repos:\n  - repo: a\n    type:\n", 3, "repos[0].type", "expected a string, got null", id="null-type"),
    pytest.param(
        "repos:\n  - repo: a\n    revisions:\n",
        3,
        "repos[0].revisions",
        "expected a list of strings, got null",
        id="null-revisions",
    ),
    pytest.param(
        "repos:\n  - repo: a\n    allow_patterns: [1]\n",
        3,
        "repos[0].allow_patterns[0]",
        "expected a string, got an integer",
        id="int-pattern",
    ),
    pytest.param(
        "repos:\n  - repo: a\n    ignore_patterns: []\n",
        3,
        "repos[0].ignore_patterns",
        "empty list",
        id="empty-patterns",
    ),
    pytest.param(
        "repos:\n  - repo: a\n    allow_patterns: ['*.json', '']\n",
        3,
        "repos[0].allow_patterns[1]",
        "must not be empty",
        id="empty-pattern",
    ),
    pytest.param(
        "repos: [{repo: a}]\nsync:\n  every: [6h]\n",
        3,
        "sync.every",
        "expected a duration such as '30s', '5m' or '6h', got a list",
        id="list-for-duration",
    ),
    pytest.param(
        "repos:\n  - repo: a\n  - 1: x\n", 3, "repos[1]", "keys must be strings, got an integer", id="int-key"
    ),
    # repos list and entries
    pytest.param("repos: {repo: a}\n", 1, "repos", "expected a list of repo entries", id="mapping-for-repos"),
    pytest.param("repos:\n  - type: model\n", 2, "repos[0].repo", "missing required key 'repo'", id="missing-repo"),
    pytest.param(
        "repos:\n  - repo: a\n    revisions: []\n", 3, "repos[0].revisions", "empty list", id="empty-revisions"
    ),
    pytest.param(
        "repos:\n  - repo: a\n    revisions:\n      - main\n      - v1\n      - main\n",
        6,
        "repos[0].revisions[2]",
        "duplicate revision 'main' (already at repos[0].revisions[0])",
        id="duplicate-revisions",
    ),
    pytest.param(
        "repos:\n  - repo: a\n    revisions: ['feature/']\n",
        3,
        "repos[0].revisions[0]",
        "invalid revision 'feature/': starts or ends with '/'",
        id="revision-trailing-slash",
    ),
    pytest.param(
        "repos:\n  - repo: a\n    revisions: ['/main']\n",
        3,
        "repos[0].revisions[0]",
        "starts or ends with '/'",
        id="revision-leading-slash",
    ),
    pytest.param(
        "repos:\n  - repo: a\n    revisions: ['a..b']\n",
        3,
        "repos[0].revisions[0]",
        "contains '..'",
        id="revision-dotdot",
    ),
    pytest.param(
        "repos:\n  - repo: a\n    revisions: ['my branch']\n",
        3,
        "repos[0].revisions[0]",
        "contains whitespace or control characters",
        id="revision-space",
    ),
    pytest.param(
        "repos:\n  - repo: a\n    revisions: ['']\n",
        3,
        "repos[0].revisions[0]",
        "must not be empty",
        id="revision-empty",
    ),
    pytest.param(
        "repos:\n  - repo: org/a\n  - repo: org/b\n  - repo: org/a\n    revisions: [v2]\n",
        4,
        "repos[2]",
        "duplicate entry for model 'org/a' (first listed at line 2, repos[0])",
        id="duplicate-entry",
    ),
    pytest.param(
        "repos:\n  - repo: Org/A\n    type: dataset\n\n  - repo: org/a\n    type: dataset\n",
        5,
        "repos[1]",
        "duplicate entry for dataset 'org/a' (first listed at line 2",
        id="duplicate-entry-case",
    ),
    pytest.param(
        "repos:\n  - repo: a\n    type: space\n",
        3,
        "repos[0].type",
        "unknown repo type 'space' (expected one of: model, dataset)",
        id="bad-type",
    ),
    pytest.param(
        "repos: [{repo: a}]\nwatch:\n  - path: /w\n    repo: a\n    type: models\n",
        5,
        "watch[0].type",
        "unknown repo type 'models'",
        id="bad-watch-type",
    ),
    # watch
    pytest.param("repos: [{repo: a}]\nwatch: []\n", 2, "watch", "empty list", id="empty-watch"),
    pytest.param(
        "repos: [{repo: a}]\nwatch:\n", 2, "watch", "expected a list of watch entries, got null", id="null-watch"
    ),
    pytest.param(
        "repos: [{repo: a}]\nwatch:\n  - repo: me/m\n",
        3,
        "watch[0].path",
        "missing required key 'path'",
        id="missing-watch-path",
    ),
    pytest.param(
        "repos: [{repo: a}]\nwatch:\n  - path: /w\n",
        3,
        "watch[0].repo",
        "missing required key 'repo'",
        id="missing-watch-repo",
    ),
    pytest.param(
        "repos: [{repo: a}]\nwatch:\n  - path: /w\n    repo: a\n    revision: 'x y'\n",
        5,
        "watch[0].revision",
        "invalid revision 'x y'",
        id="bad-watch-revision",
    ),
    pytest.param(
        "repos: [{repo: a}]\nwatch:\n  - path: /w\n    repo: a\n    message: ''\n",
        5,
        "watch[0].message",
        "must not be empty",
        id="empty-message",
    ),
    # durations and ranges
    pytest.param(
        "repos: [{repo: a}]\nsync:\n  every: 6x\n", 3, "sync.every", "'6x' is not a duration", id="bad-duration"
    ),
    pytest.param(
        "repos: [{repo: a}]\nsync:\n  every: 0s\n", 3, "sync.every", "must be greater than 0", id="zero-every"
    ),
    pytest.param(
        "repos: [{repo: a}]\nsync:\n  jitter: 1h1h\n", 3, "sync.jitter", "gives the unit 'h' twice", id="repeated-unit"
    ),
    pytest.param(
        "repos: [{repo: a}]\nwatch:\n  - path: /w\n    repo: a\n    debounce: -1\n",
        5,
        "watch[0].debounce",
        "0 or more",
        id="negative-debounce",
    ),
    pytest.param(
        "repos: [{repo: a}]\nupstream:\n  timeout: 0\n",
        3,
        "upstream.timeout",
        "must be greater than 0",
        id="zero-timeout",
    ),
    # serve.users
    pytest.param("serve:\n  users: {name: a}\n", 2, "serve.users", "expected a list of users", id="users-mapping"),
    pytest.param(
        "serve:\n  users:\n    - {name: a, token: t1, colour: red}\n",
        3,
        "serve.users[0].colour",
        "unknown key",
        id="user-unknown-key",
    ),
    pytest.param(
        "serve:\n  users:\n    - {name: a}\n",
        3,
        "serve.users[0].token",
        "missing required key 'token'",
        id="user-without-token",
    ),
    pytest.param(
        "serve:\n  users:\n    - {name: 'a b', token: t1}\n",
        3,
        "serve.users[0].name",
        "use letters, digits",
        id="user-bad-name",
    ),
    pytest.param(
        "serve:\n  users:\n    - {name: a, token: t1}\n    - {name: a, token: t2}\n",
        4,
        "serve.users[1].name",
        "duplicate user name 'a'",
        id="user-duplicate-name",
    ),
    pytest.param(
        "serve:\n  token: same\n  users:\n    - {name: a, token: same}\n",
        4,
        "serve.users[0].token",
        "the same token as another user or serve.token",
        id="user-shares-a-token",
    ),
    pytest.param(
        "serve:\n  users:\n    - {name: a, token: t1, write: ['a b/*']}\n",
        3,
        "serve.users[0].write[0]",
        "is not a repo pattern",
        id="user-bad-pattern",
    ),
    pytest.param("serve:\n  anonymous: maybe\n", 2, "serve.anonymous", "expected a boolean", id="anonymous-not-bool"),
    # values so large they would overflow the clocks they are handed to
    pytest.param("upstream:\n  timeout: 1e300\n", 2, "upstream.timeout", "longer than a year", id="huge-timeout"),
    pytest.param(
        "upstream:\n  timeout: 2d\n", 2, "upstream.timeout", "must be at most 86400 seconds", id="timeout-over-a-day"
    ),
    pytest.param("sync:\n  every: 99999999999d\n", 2, "sync.every", "longer than a year", id="huge-every"),
    pytest.param("sync:\n  jitter: 1e20\n", 2, "sync.jitter", "longer than a year", id="huge-jitter"),
    pytest.param(
        "watch:\n  - {path: x, repo: a/b, debounce: 400d}\n",
        2,
        "watch[0].debounce",
        "longer than a year",
        id="huge-debounce",
    ),
    pytest.param(
        "repos: [{repo: a}]\nsync:\n  workers: 0\n",
        3,
        "sync.workers",
        "must be between 1 and 128, got 0",
        id="workers-low",
    ),
    pytest.param(
        "repos: [{repo: a}]\nsync:\n  workers: 129\n",
        3,
        "sync.workers",
        "must be between 1 and 128, got 129",
        id="workers-high",
    ),
    pytest.param(
        "repos: [{repo: a}]\nserve:\n  port: 65536\n",
        3,
        "serve.port",
        "must be between 0 and 65535, got 65536",
        id="port-high",
    ),
    pytest.param(
        "repos: [{repo: a}]\nupstream:\n  max_requests_per_5min: 0\n",
        3,
        "upstream.max_requests_per_5min",
        "must be at least 1, got 0",
        id="rate-zero",
    ),
    pytest.param(
        "repos: [{repo: a}]\nupstream:\n  max_retries: -1\n",
        3,
        "upstream.max_retries",
        "must be between 0 and 100, got -1",
        id="retries-negative",
    ),
    pytest.param(
        "repos: [{repo: a}]\nsync:\n  every: 6h\n  cron: '0 * * * *'\n",
        4,
        "sync.cron",
        "'every' and 'cron' are mutually exclusive",
        id="every-and-cron",
    ),
    pytest.param(
        "repos: [{repo: a}]\nsync:\n  cron: '0 * * * *'\n  every: 6h\n",
        4,
        "sync.every",
        "'every' and 'cron' are mutually exclusive",
        id="cron-and-every",
    ),
    pytest.param(
        "repos: [{repo: a}]\nsync:\n  cron: '0 * *'\n",
        3,
        "sync.cron",
        "invalid cron expression '0 * *': Wrong number of fields (minute hour day-of-month month "
        "day-of-week, e.g. '0 3 * * *')",
        id="cron-fields",
    ),
    pytest.param(
        "repos: [{repo: a}]\nsync:\n  cron: '61 * * * *'\n",
        3,
        "sync.cron",
        "invalid cron expression '61 * * * *': Bad minute",
        id="cron-range",
    ),
    pytest.param(
        "repos: [{repo: a}]\nsync:\n  cron: '0 3 * * funday'\n",
        3,
        "sync.cron",
        "invalid cron expression '0 3 * * funday': Bad day-of-week",
        id="cron-name",
    ),
    # endpoint
    pytest.param(
        "upstream:\n  endpoint: ftp://hub.local\nrepos: [{repo: a}]\n",
        2,
        "upstream.endpoint",
        "expected an http:// or https:// URL",
        id="endpoint-scheme",
    ),
    pytest.param(
        "upstream:\n  endpoint: huggingface.co\nrepos: [{repo: a}]\n",
        2,
        "upstream.endpoint",
        "expected an http:// or https:// URL",
        id="endpoint-no-scheme",
    ),
    pytest.param(
        "upstream:\n  endpoint: 'https://'\nrepos: [{repo: a}]\n",
        2,
        "upstream.endpoint",
        "expected an http:// or https:// URL",
        id="endpoint-no-host",
    ),
    pytest.param(
        "upstream:\n  endpoint: 'https://hub?x=1'\nrepos: [{repo: a}]\n",
        2,
        "upstream.endpoint",
        "expected an http:// or https:// URL",
        id="endpoint-query",
    ),
    pytest.param(
        "upstream:\n  endpoint: 'https://hub:port'\nrepos: [{repo: a}]\n",
        2,
        "upstream.endpoint",
        "expected an http:// or https:// URL",
        id="endpoint-bad-port",
    ),
    pytest.param(
        "upstream:\n  endpoint: ''\nrepos: [{repo: a}]\n",
        2,
        "upstream.endpoint",
        "must not be empty",
        id="endpoint-empty",
    ),
    # YAML structure
    pytest.param(
        "repos:\n  - repo: a\n    repo: b\n",
        3,
        "repos[0].repo",
        "duplicate key (first given on line 2)",
        id="duplicate-key",
    ),
    pytest.param(
        "base: &b {repo: a}\nrepos:\n  - <<: *b\n", 3, "repos[0]", "merge keys ('<<') are not supported", id="merge-key"
    ),
    pytest.param(
        "repos: &r\n  - repo: a\n    revisions: *r\n",
        3,
        "repos[0].revisions",
        "a YAML alias refers to a node that contains it",
        id="recursive-alias",
    ),
    pytest.param("repos: !!set {a: null}\n", 1, "repos", "unsupported YAML tag", id="set-tag"),
]


@pytest.mark.parametrize(("text", "line", "key", "fragment"), MALFORMED)
def test_malformed(write: Write, text: str, line: int, key: str, fragment: str) -> None:
    path = write(text, name="bad-config.yaml")
    assert_error(load_error(path), path, line, key, fragment)


BAD_REPO_IDS = [
    ("a/b/c", "at most one '/'"),
    ("-org/x", "must start with a letter or digit"),
    ("org/x--y", "'--' and '..' are not allowed"),
    ("org/x..y", "'--' and '..' are not allowed"),
    ("org/name.git", "must not end in '.git'"),
    ("org/" + "a" * 97, "at most 96 characters"),
    ("org/", "must not be empty"),
    ("/name", "must not be empty"),
    ("org/na me", "only letters, digits"),
    ("org/na:me", "only letters, digits"),
    ("org/name-", "must not end with '-' or '.'"),
    ("org/ünï", "only letters, digits"),
]


@pytest.mark.parametrize(("repo_id", "fragment"), BAD_REPO_IDS)
def test_bad_repo_id_in_config(write: Write, repo_id: str, fragment: str) -> None:
    path = write(f"repos:\n  - repo: org/ok\n  - repo: '{repo_id}'\n")
    assert_error(load_error(path), path, 3, "repos[1].repo", f"invalid repo id {repo_id!r}: ")
    assert fragment in str(load_error(path))


@pytest.mark.parametrize(("repo_id", "fragment"), [*BAD_REPO_IDS, ("", "it is empty")])
def test_validate_repo_id_rejects(repo_id: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="invalid repo id") as info:
        validate_repo_id(repo_id)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "repo_id",
    ["gpt2", "org/name", "sentence-transformers/all-MiniLM-L6-v2", "a/b", "Org_1/v1.5-x_y", "org/" + "a" * 96],
)
def test_validate_repo_id_accepts(repo_id: str) -> None:
    assert validate_repo_id(repo_id) == repo_id


def test_empty_repo_in_config(write: Write) -> None:
    path = write("repos:\n  - repo: ''\n")
    assert_error(load_error(path), path, 2, "repos[0].repo", "must not be empty")


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        pytest.param(
            "repos:\n  - repo: a\n    revisions: [main\nsync:\n  workers: 2\n",
            4,
            "invalid YAML: while parsing a flow sequence, expected ',' or ']', but got ':' at column 5",
            id="unclosed-flow",
        ),
        pytest.param("repos:\n\t- repo: x\n", 2, "found character '\\t' that cannot start any token", id="tab"),
        pytest.param(
            "repos:\n  - repo: a\n  x: : :\n", 3, "invalid YAML: while parsing a block collection", id="bad-block"
        ),
        pytest.param(
            "repos: [{repo: a}]\n---\nrepos: []\n", 2, "expected a single document in the stream", id="two-documents"
        ),
        pytest.param("repos: *nope\n", 1, "found undefined alias 'nope'", id="undefined-alias"),
        pytest.param(
            "repos:\n  - repo: !!python/name:os.system x\n", 2, "could not determine a constructor", id="python-tag"
        ),
        pytest.param(
            "repos:\n  - repo: a\x07\n", 2, "invalid YAML: special characters are not allowed", id="control-character"
        ),
    ],
)
def test_yaml_syntax_errors(write: Write, text: str, line: int, fragment: str) -> None:
    path = write(text)
    assert_error(load_error(path), path, line, None, fragment)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file(write: Write, text: str) -> None:
    path = write(text)
    assert_error(load_error(path), path, 1, None, "the file is empty; list repos to mirror under 'repos:'")


@pytest.mark.parametrize(
    ("text", "kind"), [("- repo: a\n", "a list"), ("just text\n", "a string"), ("\n\n42\n", "an integer")]
)
def test_top_level_not_a_mapping(write: Write, text: str, kind: str) -> None:
    path = write(text)
    assert_error(
        load_error(path),
        path,
        text.count("\n"),
        None,
        f"the top level must be a mapping with keys such as 'repos', got {kind}",
    )


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"repos:\n  - repo: caf\xe9\n")
    assert_error(load_error(path), path, 2, None, "the file is not UTF-8 text")


def test_alias_bomb_is_refused(write: Write) -> None:
    levels = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 7)]
    path = write("\n".join(levels) + "\nrepos: [{repo: a}]\n")
    assert_error(load_error(path), path, 1, None, "expands to more than 100000 values")


def test_error_file_name_is_as_given(write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write("repos: org/a\n", name="conf.yaml")
    monkeypatch.chdir(tmp_path)
    expected = "conf.yaml:1: repos: expected a list of repo entries, got a string"
    assert str(load_error(Path("conf.yaml"))) == expected


def test_config_error_exit_code(write: Write) -> None:
    assert load_error(write("repos: org/a\n")).exit_code == 3


# --- parse_duration -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6h", 21600.0),
        ("30m", 1800.0),
        ("90s", 90.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1h 30m 15s", 5415.0),
        ("1.5h", 5400.0),
        ("0", 0.0),
        ("  45  ", 45.0),
        ("2.5", 2.5),
        (30, 30.0),
        (0.25, 0.25),
        ("1m500ms", 60.5),
        ("0s", 0.0),
    ],
)
def test_parse_duration(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ",
        "6x",
        "h",
        "1h1h",
        "-5",
        "-5m",
        "1 h x",
        "6H",
        "inf",
        "nan",
        "1,5h",
        "1h-30m",
        True,
        None,
        [1],
        float("inf"),
        -1,
    ],
)
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)  # type: ignore[arg-type]
