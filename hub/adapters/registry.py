"""Adapters by name: found through the ``hub.adapters`` entry-point group, imported lazily.

A third-party adapter is one package declaring, in its pyproject.toml::

    [project.entry-points."hub.adapters"]
    acme-rms = "acme_hub.adapter:AcmeAdapter"

Two packages claiming the same name is a configuration error, never a silent override.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

from hub.adapters.base import Adapter
from hub.errors import ConfigError

GROUP = "hub.adapters"


class AdapterRegistry:
    def __init__(self, targets: dict[str, str] | None = None) -> None:
        # name -> "module:Class"; imported only when first asked for
        self._targets: dict[str, str] = {}
        self._loaded: dict[str, type[Adapter]] = {}
        for name, target in (targets or {}).items():
            self.register(name, target)

    @classmethod
    def from_entry_points(cls, eps: Iterable[EntryPoint] | None = None) -> AdapterRegistry:
        registry = cls()
        for ep in entry_points(group=GROUP) if eps is None else eps:
            registry.register(ep.name, ep.value)
        return registry

    def register(self, name: str, target: str | type[Adapter]) -> None:
        value = target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"
        existing = self._targets.get(name)
        if existing is not None and existing != value:
            raise ConfigError(f"adapter {name!r} is claimed by both {existing} and {value}")
        self._targets[name] = value
        if not isinstance(target, str):
            self._loaded[name] = target

    def names(self) -> list[str]:
        return sorted(self._targets)

    def get(self, name: str) -> type[Adapter]:
        if name in self._loaded:
            return self._loaded[name]
        target = self._targets.get(name)
        if target is None:
            known = ", ".join(self.names()) or "none"
            raise ConfigError(f"no adapter named {name!r} (installed: {known})")
        module_name, _, attr = target.partition(":")
        try:
            obj: object = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"adapter {name!r} ({target}) cannot be imported: {exc}") from exc
        if not (isinstance(obj, type) and issubclass(obj, Adapter)):
            raise ConfigError(f"adapter {name!r} ({target}) is not an Adapter subclass")
        if obj.kind != name:
            raise ConfigError(
                f"adapter {target} declares kind {obj.kind!r}, registered as {name!r}"
            )
        self._loaded[name] = obj
        return obj
