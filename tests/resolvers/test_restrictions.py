"""Restrictions default to deny, over real HTTP: a vendor restriction code that no policy names
makes its record a pointer at most, for everyone, found by nothing; naming the code in
``policies/legal-tags.yaml`` (no code release) turns it into the legal tag it stands for."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hub.access.policy import default_policy_dir
from hub.demo.world import World
from hub.model import Person
from tests.adapters.conformance import small_world
from tests.conftest import HubServer, demo_settings, serve_hub

MARIN, CASCADE = "CA0990000", "WA0990100"
CODE = "northwind:zq"  # Northwind sends it as restriction code "ZQ" (docs/vendors/northwind-rms.md)
SEARCH = """query($text: String!) { search(text: $text, kinds: [PERSON]) {
  hits { __typename ... on Person { id name { surname } }
         ... on RecordPointer { kind owner { ori } } }
  sources { source status count } } }"""


def _restricted_world() -> tuple[World, Person]:
    world = small_world()
    marin = world.records["marin-rms"]
    index, target = next(
        (i, r)
        for i, r in enumerate(marin)
        if isinstance(r, Person)
        and not r.tags
        and r.name.surname
        and r.name.surname != "Reyes"
        # a surname no other record of the world carries, so any hit is this record's
        and sum(
            isinstance(o, Person) and o.name.surname == r.name.surname
            for rs in world.records.values()
            for o in rs
        )
        == 1
    )
    restricted = msgspec.structs.replace(target, tags=frozenset({CODE}))
    records = dict(world.records)
    records["marin-rms"] = [*marin[:index], restricted, *marin[index + 1 :]]
    return dataclasses.replace(world, records=records), restricted


WORLD, RESTRICTED = _restricted_world()


async def _hub(tmp_path: Path, policy_dir: Path | None = None) -> AsyncIterator[HubServer]:
    settings = demo_settings(tmp_path)
    if policy_dir is not None:
        settings = dataclasses.replace(settings, policy_dir=policy_dir)
    async for server in serve_hub(settings, world=WORLD):
        yield server


async def _search(hub: HubServer, agency: str, roles: tuple[str, ...]) -> dict[str, Any]:
    body = await hub.query(SEARCH, {"text": RESTRICTED.name.surname}, agency=agency, roles=roles)
    assert "errors" not in body, body
    return body["data"]["search"]


async def test_an_unknown_restriction_hides_the_record_from_everyone_and_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hub.access.policy"):
        async for hub in _hub(tmp_path):
            for agency, roles in ((MARIN, ("analyst",)), (CASCADE, ("detective",))):
                result = await _search(hub, agency, roles)
                assert result["hits"] == [], (agency, result)
                marin = next(s for s in result["sources"] if s["source"] == "marin-rms")
                assert marin["status"] == "NO_HIT"
                assert marin["count"] == 0
            # by id too: a pointer cannot stand where a Person is expected
            body = await hub.query("query($id: ID!) { person(id: $id) { id } }",
                                   {"id": RESTRICTED.id})  # fmt: skip
            assert body["data"]["person"] is None
    # (the next test shows the vendor does return it: the policy, not the vendor, hid it)
    logged = [r.getMessage() for r in caplog.records if CODE in r.getMessage()]
    assert len(logged) == 1
    assert "marin-rms" in logged[0]
    assert RESTRICTED.name.surname not in logged[0]


async def test_naming_the_code_in_policy_data_reads_it_as_its_legal_tag(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), policy_dir)
    vocabulary = policy_dir / "legal-tags.yaml"
    vocabulary.write_text(
        vocabulary.read_text().replace("codes: {}", f'codes: {{"{CODE}": juvenile}}')
    )
    async for hub in _hub(tmp_path, policy_dir):
        own = await _search(hub, MARIN, ("analyst",))
        assert [h["id"] for h in own["hits"] if h["__typename"] == "Person"] == [RESTRICTED.id]
        other = await _search(hub, CASCADE, ("detective",))
        # a juvenile record of another agency: a pointer, found by the name
        assert other["hits"] == [{"__typename": "RecordPointer", "kind": "PERSON",
                                  "owner": {"ori": MARIN}}]  # fmt: skip
