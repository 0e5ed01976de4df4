"""In-memory lookup over one system's canonical records, shared by the vendor simulators.

Each simulator keeps its own wire format; what they share is how a record is found: by vendor
id, by plate, by VIN, and by word (names for persons, plate/VIN for vehicles, number, offence,
location and narrative words for incidents). Word search means every word of the query is a word
of the record (case-insensitive), as most RMS name searches do.
"""

from __future__ import annotations

import gc
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from anyascii import anyascii

from hub.model import (
    EntityKind,
    Incident,
    Person,
    PlateRead,
    Record,
    Vehicle,
    kind_of,
    normalise_plate,
)

_WORD = re.compile(r"[A-Za-z0-9]+")


def words(text: str | None) -> set[str]:
    """Lower-case words, accents read as ASCII letters (``anyascii``), as RMS name searches
    do: Muñoz is found by Munoz and by Muñoz."""
    if not text:
        return set()
    if not text.isascii():
        text = anyascii(text)
    return {w.lower() for w in _WORD.findall(text)}


def _record_words(record: Record) -> set[str]:
    if isinstance(record, Person):
        out: set[str] = set()
        for name in (record.name, *record.aliases):
            for part in (name.given, name.middle, name.surname, name.suffix):
                out |= words(part)
        return out
    if isinstance(record, Vehicle):
        out = set()
        if record.plate is not None:
            out.add(record.plate.number.lower())
        if record.vin:
            out.add(record.vin.lower())
        return out
    if isinstance(record, Incident):
        out = words(record.number) | words(record.narrative)
        if record.location is not None:
            out |= words(record.location.address)
        for offense in record.offenses:
            out |= words(offense.description) | {offense.code.lower()}
        return out
    return {record.plate.number.lower()}


class RecordIndex:
    def __init__(self, records: Iterable[Record]) -> None:
        # Millions of small containers: the cyclic GC would rescan them all, many times over,
        # while they are built (6.4 s vs 1.2 s for 150k records). Nothing here forms a cycle.
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._build(records)
        finally:
            if enabled:
                gc.enable()

    def _build(self, records: Iterable[Record]) -> None:
        self.by_id: dict[tuple[EntityKind, str], Record] = {}
        self._by_word: dict[str, list[Record]] = defaultdict(list)
        self._by_plate: dict[str, list[Record]] = defaultdict(list)
        self.records: list[Record] = []
        for record in records:
            self.records.append(record)
            self.by_id[(kind_of(record), record.provenance.record_id)] = record
            if isinstance(record, PlateRead):
                # Plate reads are found by plate only (by_plates); a word index over millions
                # of reads would cost start-up time for nothing.
                self._by_plate[normalise_plate(record.plate.number)].append(record)
                continue
            for word in _record_words(record):
                self._by_word[word].append(record)
            if isinstance(record, Vehicle) and record.plate is not None:
                self._by_plate[normalise_plate(record.plate.number)].append(record)

    def add(self, record: Record) -> None:
        """A record that reached the system after start (a new read, a new report), or a new
        version of one it holds (sealed since): the old version is found no more."""
        old = self.by_id.get((kind_of(record), record.provenance.record_id))
        if old is not None:
            self.records = [r for r in self.records if r is not old]
            for bucket in (*self._by_word.values(), *self._by_plate.values()):
                if old in bucket:
                    bucket.remove(old)
        self._build_one(record)

    def _build_one(self, record: Record) -> None:
        self.records.append(record)
        self.by_id[(kind_of(record), record.provenance.record_id)] = record
        if isinstance(record, PlateRead):
            self._by_plate[normalise_plate(record.plate.number)].append(record)
            return
        for word in _record_words(record):
            self._by_word[word].append(record)
        if isinstance(record, Vehicle) and record.plate is not None:
            self._by_plate[normalise_plate(record.plate.number)].append(record)

    def get(self, kind: EntityKind, record_id: str) -> Record | None:
        return self.by_id.get((kind, record_id))

    def search(self, text: str, kinds: Iterable[EntityKind]) -> list[Record]:
        """Records of these kinds having every word of ``text``, in index order."""
        wanted = set(kinds)
        query = sorted(words(text), key=lambda w: len(self._by_word.get(w, ())))
        if not query:
            return []
        candidates = self._by_word.get(query[0], [])
        rest = query[1:]
        out: list[Record] = []
        for record in candidates:
            if kind_of(record) not in wanted:
                continue
            if rest and not all(w in _record_words(record) for w in rest):
                continue
            out.append(record)
        return out

    def by_plates(
        self,
        plates: Sequence[str],
        kind: EntityKind,
        state: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Record]:
        out: list[Record] = []
        for plate in plates:
            for record in self._by_plate.get(normalise_plate(plate), ()):
                if kind_of(record) is not kind:
                    continue
                assert isinstance(record, Vehicle | PlateRead)
                if state and record.plate is not None and record.plate.state != state:
                    continue
                if isinstance(record, PlateRead) and (
                    (since and record.read_at < since) or (until and record.read_at > until)
                ):
                    continue
                out.append(record)
        return out
