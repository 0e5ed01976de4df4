"""The source adapter contract.

An adapter is one class that speaks one vendor protocol. It maps the vendor's payload to
canonical records (``hub.model``) and the vendor's failures to the error tree (``hub.errors``):
every exception leaving ``search`` or ``get_many`` is a ``SourceError`` subclass (or
``asyncio.CancelledError`` when the fan-out cancels it). It knows nothing of GraphQL, access
control or audit; timeouts are enforced by the caller (``hub.adapters.fanout``).

Adapters are registered by name (``kind``) through the ``hub.adapters`` entry-point group, so a
third-party adapter is one installable package (``hub.adapters.registry``).
"""

from __future__ import annotations

import abc
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

import aiohttp

from hub.context import RequestContext
from hub.model import EntityKind, Record, SourceKind, SourceSystem

# What an adapter is made with: defined with the rest of the configuration, and part of the
# contract, so adapters (the bundled ones, a third party's) import it from here.
from hub.settings import SourceConfig as SourceConfig


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """What the hub asks one source. Adapters answer the kinds they can and ignore the rest.

    ``text`` is the universal-search text: names for persons, plate or VIN for vehicles,
    number / narrative / location for incidents, plate for plate reads. ``plates`` asks for
    exact plate numbers (normalised, ``hub.model.normalise_plate``), many at once, which is how
    relationships are batched (Vehicle.plateReads, PlateRead.vehicle).
    """

    kinds: frozenset[EntityKind]
    text: str | None = None
    plates: tuple[str, ...] = ()
    plate_state: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    # Who is asking; only adapters that forward the requester (partner hubs) read it.
    context: RequestContext | None = None


class Adapter(abc.ABC):
    kind: ClassVar[str]  # the registry name, e.g. "northwind-rms"
    vendor: ClassVar[str]  # e.g. "Northwind"
    source_kind: ClassVar[SourceKind]
    entity_kinds: ClassVar[frozenset[EntityKind]]

    def __init__(self, config: SourceConfig, session: aiohttp.ClientSession) -> None:
        # The session is owned by the app's lifespan and shared by every adapter.
        self.config = config
        self.session = session
        self.system = SourceSystem(name=config.name, vendor=self.vendor, kind=self.source_kind)

    @property
    def name(self) -> str:
        return self.config.name

    def answers(self, request: SearchRequest) -> bool:
        """Whether this source can say anything about the request at all."""
        return bool(request.kinds & self.entity_kinds)

    @abc.abstractmethod
    async def search(self, request: SearchRequest) -> list[Record]:
        """Records matching the request, at most ``request.limit`` of each kind asked."""

    @abc.abstractmethod
    async def get_many(self, kind: EntityKind, record_ids: Sequence[str]) -> list[Record]:
        """The records with these vendor ids (``Provenance.record_id``); unknown ids are absent."""

    def parse_notices(self, body: bytes) -> list[tuple[EntityKind, str]]:
        """A vendor's push that records were expunged or sealed: (kind, vendor id) of each.

        The hub evicts every cached answer holding them (``POST /sources/NAME/notices``). The
        default reads the hub's own format; an adapter overrides this for its vendor's::

            {"notices": [{"kind": "PERSON", "recordId": "NW-P-000123", "notice": "SEALED"}]}

        Raises ``ValueError`` on a body it cannot read.
        """
        payload = json.loads(body)
        if not isinstance(payload, dict) or not isinstance(payload.get("notices"), list):
            raise ValueError('expected {"notices": [...]}')
        out = []
        for notice in payload["notices"]:
            if not isinstance(notice, dict) or not isinstance(notice.get("recordId"), str):
                raise ValueError("each notice needs a recordId")
            out.append((EntityKind(str(notice.get("kind"))), notice["recordId"]))
        return out

    def parse_reads(self, body: bytes) -> list[Record]:
        """An ALPR system's push of new plate reads (``POST /sources/NAME/reads``), as records;
        matched against watches and hot lists as they arrive (``hub.live``). The default: this
        source does not push reads. Raises ``ValueError`` on a body it cannot read."""
        raise ValueError("this source does not push plate reads")

    async def close(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release anything the adapter holds beyond the shared session."""
