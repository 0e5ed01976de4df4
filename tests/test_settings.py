from __future__ import annotations

from pathlib import Path

import pytest

from hub.errors import ConfigError
from hub.settings import load_settings

CONFIG = """
mode = "dev"
[agencies.CA0990000]
name = "Marin Valley Sheriff's Office"
state = "CA"
contact = "Records, (415) 555-0100"
[sources.marin-rms]
kind = "northwind-rms"
agency = "CA0990000"
url = "https://rms.example.org/api/"
api_key = "${MARIN_RMS_KEY}"
timeout_ms = 900
page_size = "50"
"""


def test_no_config_is_the_demo(tmp_path: Path) -> None:
    s = load_settings(None, env={})
    assert s.mode == "demo"
    assert s.uses_demo_world
    assert s.introspection
    assert s.redis_url is None


def test_config_file_with_secret_from_env(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(CONFIG)
    s = load_settings(path, env={"MARIN_RMS_KEY": "s3cret-key"})
    (source,) = s.sources
    assert source.name == "marin-rms"
    assert source.agency.state == "CA"
    assert source.url == "https://rms.example.org/api"
    assert source.timeout_ms == 900
    assert source.options == {"page_size": "50"}
    assert source.api_key.reveal() == "s3cret-key"
    # a secret never prints
    assert "s3cret" not in repr(s)
    assert "s3cret" not in str(source)


def test_missing_env_secret_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(CONFIG)
    with pytest.raises(ConfigError, match="MARIN_RMS_KEY"):
        load_settings(path, env={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mode = 'chaos'", "mode"),
        ("mode = 'production'", "jwks_url"),
        ("[agencies.BAD]\nname='x'\nstate='CA'", "ORI"),
        ("[sources.x]\nkind='k'\nagency='CA0990000'\nurl='u'", "agencies.CA0990000"),
        ("this is not toml", "TOML"),
        ("[auth]\nalgorithms=['none']", "none"),
    ],
)
def test_bad_config_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path, env={"HUB_MODE": "dev"} if "mode" not in text else {})


def test_production_turns_introspection_off(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text("[auth]\njwks_url = 'https://idp.example/jwks'\n")
    s = load_settings(path, env={})
    assert s.mode == "production"
    assert not s.introspection
