"""``Secret``: a value that must never be printed or logged. A leaf: it imports nothing of hub,
so everything that holds a secret (settings, the Redis link, the cache key) can use it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Secret:
    """A value that must never be printed or logged (API keys, passwords)."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return "**********"

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __bool__(self) -> bool:
        return bool(self._value)
