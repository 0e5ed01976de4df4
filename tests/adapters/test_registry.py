from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from hub.adapters.base import Adapter
from hub.adapters.registry import GROUP, AdapterRegistry
from hub.errors import ConfigError


def test_installed_adapters_are_found_through_entry_points() -> None:
    registry = AdapterRegistry.from_entry_points()
    for name in ("northwind-rms", "keystone-rms", "beacon-cad", "sentinel-alpr"):
        cls = registry.get(name)
        assert issubclass(cls, Adapter)
        assert cls.kind == name


def test_unknown_adapter_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no adapter named 'acme-rms'"):
        AdapterRegistry.from_entry_points().get("acme-rms")


def test_two_claims_on_one_name_are_refused() -> None:
    eps = [
        EntryPoint("northwind-rms", "hub.adapters.northwind:NorthwindAdapter", GROUP),
        EntryPoint("northwind-rms", "evil.adapter:Impostor", GROUP),
    ]
    with pytest.raises(ConfigError, match="claimed by both"):
        AdapterRegistry.from_entry_points(eps)


def test_target_that_is_not_an_adapter_is_refused() -> None:
    registry = AdapterRegistry({"json": "json:JSONDecoder"})
    with pytest.raises(ConfigError, match="not an Adapter"):
        registry.get("json")
    registry = AdapterRegistry({"nothing": "no.such.module:X"})
    with pytest.raises(ConfigError, match="cannot be imported"):
        registry.get("nothing")
