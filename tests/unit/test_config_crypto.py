"""Settings parsing and validation; the secret box round trip and its bindings."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from ywmessaging.config import ENV_VARS, REPO_ROOT, EnvVar, Settings
from ywmessaging.crypto import SecretBox
from ywmessaging.db.dsn import PgTarget
from ywmessaging.errors import ConfigError


def test_env_is_read_and_typed() -> None:
    s = Settings.from_env({"YWM_PORT": "9001", "DATABASE_URL": "postgresql://u@h/db",
                           "YWM_SHUTDOWN_TIMEOUT": "2.5"})
    assert (s.port, s.database_url, s.shutdown_timeout) == (9001, "postgresql://u@h/db", 2.5)


@pytest.mark.parametrize("env", [
    {"YWM_PORT": "eighty"}, {"YWM_DB_PREFIX": "Bad-Prefix"}, {"JWT_ACCESS_TTL": "3600"},
    {"YWM_SECRET_KEY": "short"}, {"YWM_LOG_FORMAT": "xml"},
])
def test_bad_settings_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)


def test_require_database_url_says_what_to_do() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings.from_env({}).require_database_url()


def test_every_setting_is_declared_once_with_its_env_var_and_the_readme_lists_it() -> None:
    names = [v.name for v in ENV_VARS]
    assert len(names) == len(set(names)), "two settings read the same variable"
    assert {v.attr for v in ENV_VARS} == set(vars(Settings())), "a field is not a setting"
    readme = (REPO_ROOT / "README.md").read_text()
    for name in names:
        assert f"`{name}`" in readme, f"README's table lacks {name}"


def test_each_setting_is_parsed_by_its_declared_type() -> None:
    kinds = {v.attr: v.kind for v in ENV_VARS}
    assert kinds["port"] is int and kinds["tenant_pool_cap"] is int
    assert kinds["lease_timeout"] is float and kinds["data_dir"].__name__ == "Path"
    assert kinds["database_url"] is str
    s = Settings.from_env({"YWM_TENANT_POOL_CAP": "7", "YWM_DATA_DIR": "~/ywm",
                           "YWM_LEASE_TIMEOUT": "3", "YWM_HOST": ""})
    assert (s.tenant_pool_cap, s.lease_timeout, s.host) == (7, 3.0, "127.0.0.1")
    assert s.data_dir.is_absolute() and s.data_dir.name == "ywm"  # ~ expanded
    with pytest.raises(ConfigError, match=r"^YWM_LEASE_TIMEOUT must be a number, got 'soon'$"):
        Settings.from_env({"YWM_LEASE_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match=r"^YWM_PORT must be a whole number, got '8\.5'$"):
        Settings.from_env({"YWM_PORT": "8.5"})


def test_a_default_is_the_declared_one_and_the_dataclass_default() -> None:
    defaults = Settings()
    for var in ENV_VARS:
        assert isinstance(var, EnvVar) and getattr(defaults, var.attr) == var.default


def test_secret_box_round_trip_and_purpose_binding() -> None:
    box = SecretBox("k" * 40)
    sealed = box.seal("hunter2", "tenant-role:1")
    assert b"hunter2" not in sealed
    assert box.open(sealed, "tenant-role:1") == "hunter2"
    with pytest.raises(InvalidTag):
        box.open(sealed, "tenant-role:2")
    with pytest.raises(InvalidTag):
        SecretBox("j" * 40).open(sealed, "tenant-role:1")


@pytest.mark.parametrize("dsn, host, port, user, password, db", [
    ("postgresql://a:b%40c@db.example:6543/reg", "db.example", 6543, "a", "b@c", "reg"),
    ("postgresql://postgres:@/postgres?host=/tmp/pg", "/tmp/pg", 5432, "postgres", None,
     "postgres"),
    ("postgres://u@127.0.0.1/x", "127.0.0.1", 5432, "u", None, "x"),
])
def test_dsn_parse_and_round_trip(dsn: str, host: str, port: int, user: str,
                                  password: str | None, db: str) -> None:
    t = PgTarget.parse(dsn)
    assert (t.host, t.port, t.user, t.password, t.database) == (host, port, user, password, db)
    assert PgTarget.parse(t.dsn()) == t


def test_non_postgres_url_refused() -> None:
    with pytest.raises(ConfigError):
        PgTarget.parse("mysql://u@h/db")


def test_readme_table_is_current() -> None:
    from ywmessaging.commands.env import markdown_table

    assert markdown_table() in (REPO_ROOT / "README.md").read_text(), (
        "README's environment table is stale: run `ywm env --update-readme`"
    )
