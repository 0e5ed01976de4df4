"""The hub as a Federation v2 subgraph, proven with real federation software.

- ``_entities`` and a direct ``person(id:)`` give the same answer for the same subject and
  record, including a field the policy denies and a record the subject may not see, and both
  are audited alike.
- Our SDL (``_service { sdl }`` of a running hub) composes with a case-management subgraph under
  ``@theguild/federation-composition``; ``@graphql-hive/gateway`` serves the supergraph on
  loopback and plans queries across both: a case's subjects are resolved by the hub's
  ``_entities`` (as the user who asked: the gateway forwards Authorization, X-Purpose and
  X-Case-Number), the hub's Person is extended with the subgraph's ``cases``.

The npm packages are pinned in ``tests/federation/package-lock.json`` and installed with
``npm ci`` by the ``npm_tools`` fixture (once per lockfile). The gateway tests skip only when
``node`` or ``npm`` is not installed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import uvicorn

from hub.model import Person, Record
from tests.adapters.conformance import small_world
from tests.conftest import HubServer, demo_settings, serve_hub
from tests.federation.cases import CaseBook, CaseFile, CasesApp
from tests.ports import free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

HERE = Path(__file__).parent
STAMP = HERE / "node_modules" / ".hub-lock-sha256"
GATEWAY_STARTUP_S = 90.0

WORLD = small_world()


def _person(source: str, surname: str, dob: str | None = None) -> Record:
    return next(
        r
        for r in WORLD.records[source]
        if isinstance(r, Person)
        and r.name.surname == surname
        and (dob is None or str(r.date_of_birth) == dob)
    )


MARIN_REYES = _person("marin-rms", "Reyes").id  # a Marin analyst reads it in full
HARBOR_REYES = _person("harbor-rms", "Reyes", "1988-04-12").id  # identification only
SEALED = _person("marin-rms", "Whitlock").id  # sealed: invisible to all but Marin's records clerk

PERSON_FIELDS = (
    "id name { given surname } dateOfBirth sex ssn addresses { city } phones "
    "provenance { agency { ori } system { name } recordId }"
)


# -- a hub, and direct comparisons of _entities with person(id:) --------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hub(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[HubServer]:
    async for server in serve_hub(demo_settings(tmp_path_factory.mktemp("subgraph")), world=WORLD):
        yield server


@dataclass
class Answer:
    body: dict[str, Any]
    entry: dict[str, Any]  # the hub's audit entry of the request


async def _ask(hub: HubServer, query: str, variables: dict[str, Any] | None = None) -> Answer:
    headers = {
        "Authorization": f"Bearer {hub.token('CA0990000', ('analyst',), 'analyst1')}",
        "X-Purpose": "C",
        "Content-Type": "application/json",
    }
    async with hub.session.post(
        f"{hub.url}/graphql", json={"query": query, "variables": variables}, headers=headers
    ) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        trace_id = resp.headers["X-Trace-Id"]
    return Answer(body, _audit_entry(hub, lambda e: e["trace_id"] == trace_id))


def _audit_entry(hub: HubServer, wanted: Any) -> dict[str, Any]:
    path = Path(hub.settings.audit_location) / "audit.jsonl"
    (entry,) = [e for e in map(json.loads, path.read_text().splitlines()) if wanted(e)]
    return entry


def _withheld(body: dict[str, Any]) -> dict[str, int]:
    return {
        e["extensions"]["field"]: e["extensions"]["withheld"]
        for e in body.get("errors", [])
        if e["extensions"]["code"] == "FORBIDDEN_FIELD"
    }


def _records(entry: dict[str, Any]) -> set[tuple[str, str, str | None]]:
    return {(r["id"], r["owner"], r.get("visibility")) for r in entry["records"]}


@pytest.mark.parametrize(
    ("hub_id", "shown", "denied"),
    [
        (MARIN_REYES, True, set()),
        (HARBOR_REYES, True, {"Person.ssn", "Person.addresses", "Person.phones"}),
        (SEALED, False, set()),
    ],
    ids=["full", "denied-fields", "invisible"],
)
async def test_entities_and_person_by_id_are_the_same_decision(
    hub: HubServer, hub_id: str, shown: bool, denied: set[str]
) -> None:
    direct = await _ask(
        hub, f"query($id: ID!) {{ person(id: $id) {{ {PERSON_FIELDS} }} }}", {"id": hub_id}
    )
    entities = await _ask(
        hub,
        "query($reps: [_Any!]!) { _entities(representations: $reps) "
        f"{{ ... on Person {{ {PERSON_FIELDS} }} }} }}",
        {"reps": [{"__typename": "Person", "id": hub_id}]},
    )
    person = direct.body["data"]["person"]
    assert entities.body["data"]["_entities"] == [person]
    assert (person is not None) == shown
    if person is not None:
        assert person["name"]["surname"] == "Reyes"
        assert {f"Person.{k}" for k, v in person.items() if v is None} >= denied
    assert set(_withheld(direct.body)) >= denied
    assert bool(_withheld(direct.body)) == bool(denied)
    assert _withheld(entities.body) == _withheld(direct.body)
    # Both are audited alike: who, why, which record left (or none), what was withheld.
    for answer in (direct, entities):
        assert (answer.entry["user"], answer.entry["agency"]) == ("analyst1", "CA0990000")
        assert answer.entry["purpose"] == "C"
    assert _records(entities.entry) == _records(direct.entry)
    assert {r[0] for r in _records(direct.entry)} == ({hub_id} if shown else set())
    assert entities.entry["withheld"] == direct.entry["withheld"]
    assert "_entities" in entities.entry["criteria"]
    assert "person" in direct.entry["criteria"]


async def test_entities_are_fetched_in_one_batch_per_source(hub: HubServer) -> None:
    assert hub.runtime.world is not None
    marin = hub.runtime.world.simulators["marin-rms"]
    before = len(marin.requests)
    reps = [{"__typename": "Person", "id": i} for i in (MARIN_REYES, SEALED, HARBOR_REYES)]
    answer = await _ask(
        hub,
        "query($reps: [_Any!]!) { _entities(representations: $reps) { ... on Person { id } } }",
        {"reps": reps},
    )
    assert [e and e["id"] for e in answer.body["data"]["_entities"]] == [
        MARIN_REYES,
        None,
        HARBOR_REYES,
    ]
    assert len(marin.requests) - before == 1  # two Marin ids, one vendor call


# -- real federation software: composition and a gateway -----------------------------------------


@pytest.fixture(scope="module")
def npm_tools() -> tuple[str, str]:
    """node and npm, with the pinned packages installed (``npm ci``, once per lockfile)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the federation gateway tests (not installed)")
    lock = hashlib.sha256((HERE / "package-lock.json").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != lock:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        STAMP.write_text(lock)
    return node, npm


CASE_OPEN = "26-001234"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cases_url() -> AsyncIterator[str]:
    book = CaseBook(
        (
            CaseFile(CASE_OPEN, "Catalytic converter thefts", (MARIN_REYES, HARBOR_REYES, SEALED)),
            CaseFile("26-000077", "Stolen laptop", (MARIN_REYES,)),
        )
    )
    server = uvicorn.Server(
        uvicorn.Config(CasesApp(book), host="127.0.0.1", port=0, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await task


async def _sdl(session: aiohttp.ClientSession, url: str, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.post(url, json={"query": "{ _service { sdl } }"}, headers=headers) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    sdl: str = body["data"]["_service"]["sdl"]
    return sdl


@dataclass
class Gateway:
    url: str
    supergraph: str
    session: aiohttp.ClientSession

    async def query(
        self, query: str, variables: dict[str, Any] | None = None, **headers: str
    ) -> dict[str, Any]:
        async with self.session.post(
            self.url, json={"query": query, "variables": variables}, headers=headers
        ) as resp:
            body: dict[str, Any] = await resp.json(content_type=None)
            return body


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(
    npm_tools: tuple[str, str],
    hub: HubServer,
    cases_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Gateway]:
    node, _ = npm_tools
    tmp = tmp_path_factory.mktemp("gateway")
    token = hub.token("CA0990000", ("analyst",), "analyst1")
    (tmp / "hub.graphql").write_text(await _sdl(hub.session, f"{hub.url}/graphql", token))
    (tmp / "cases.graphql").write_text(await _sdl(hub.session, cases_url))
    supergraph = tmp / "supergraph.graphql"
    composed = await asyncio.create_subprocess_exec(
        node,
        str(HERE / "compose.mjs"),
        str(supergraph),
        f"hub={hub.url}/graphql={tmp / 'hub.graphql'}",
        f"cases={cases_url}={tmp / 'cases.graphql'}",
        cwd=HERE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await composed.communicate()
    assert composed.returncode == 0, f"composition failed:\n{err.decode()}{out.decode()}"
    port = free_port()
    log = (tmp / "gateway.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        node,
        str(HERE / "node_modules" / "@graphql-hive" / "gateway" / "dist" / "bin.js"),
        "supergraph",
        str(supergraph),
        "--config-path",
        str(HERE / "gateway.config.mjs"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        cwd=HERE,
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = asyncio.get_running_loop().time() + GATEWAY_STARTUP_S
        while True:
            if process.returncode is not None:
                pytest.fail(f"the gateway exited:\n{(tmp / 'gateway.log').read_text()[-4000:]}")
            try:
                async with hub.session.get(f"{url}/readiness") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"the gateway did not get ready in {GATEWAY_STARTUP_S} s")
            await asyncio.sleep(0.25)
        yield Gateway(f"{url}/graphql", supergraph.read_text(), hub.session)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


def _user(hub: HubServer, case: str, **headers: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {hub.token('CA0990000', ('analyst',), 'analyst1')}",
        "X-Purpose": "C",
        "X-Case-Number": case,
        **headers,
    }


async def test_the_supergraph_joins_both_subgraphs(gateway: Gateway) -> None:
    sdl = gateway.supergraph
    assert "https://specs.apollo.dev/join/v0.5" in sdl or "join__Graph" in sdl
    assert 'HUB @join__graph(name: "hub"' in sdl
    assert 'CASES @join__graph(name: "cases"' in sdl
    # Person is an entity of both, keyed by id.
    assert '@join__type(graph: HUB, key: "id")' in sdl
    assert '@join__type(graph: CASES, key: "id")' in sdl


CASE_QUERY = f"""
query Case($number: String!) {{
  case(number: $number) {{ number title subjects {{ {PERSON_FIELDS} }} }}
}}
"""


async def test_a_case_subjects_are_resolved_by_the_hub_for_the_user(
    gateway: Gateway, hub: HubServer
) -> None:
    marker = f"GW-{uuid.uuid4().hex[:8]}"
    body = await gateway.query(CASE_QUERY, {"number": CASE_OPEN}, **_user(hub, marker))
    case = body["data"]["case"]
    assert case["title"] == "Catalytic converter thefts"
    marin, harbor, sealed = case["subjects"]
    # Marin's own record, in full for a Marin analyst.
    assert marin["id"] == MARIN_REYES
    assert marin["provenance"]["agency"]["ori"] == "CA0990000"
    assert marin["ssn"] is not None
    # Harbor Falls shares identification only: the denied fields are null...
    assert harbor["name"]["surname"] == "Reyes"
    assert (harbor["ssn"], harbor["addresses"], harbor["phones"]) == (None, None, None)
    # ...and the sealed record is not there at all (its non-null provenance is null).
    assert sealed is None
    # The hub audited the gateway's entity fetch as the analyst, with the case number.
    entry = _audit_entry(hub, lambda e: e.get("case_number") == marker)
    assert (entry["user"], entry["agency"], entry["purpose"]) == ("analyst1", "CA0990000", "C")
    assert "_entities" in entry["criteria"]
    assert {r["id"] for r in entry["records"]} == {MARIN_REYES, HARBOR_REYES}
    assert "Person.ssn" in {w["field"] for w in entry["withheld"]}


async def test_a_denied_field_arrives_as_forbidden_field_through_the_gateway(
    gateway: Gateway, hub: HubServer
) -> None:
    body = await gateway.query(CASE_QUERY, {"number": CASE_OPEN}, **_user(hub, "GW-denied"))
    forbidden = {
        e["extensions"].get("field"): e.get("path")
        for e in body.get("errors", [])
        if (e.get("extensions") or {}).get("code") == "FORBIDDEN_FIELD"
    }
    assert "Person.ssn" in forbidden, json.dumps(body.get("errors"))
    # placed at the withheld field, not on the fields of the sealed (null) subject
    assert forbidden["Person.ssn"][:2] == ["case", "subjects"]
    assert forbidden["Person.ssn"][-1] == "ssn"


async def test_the_hubs_person_gains_cases_from_the_other_subgraph(
    gateway: Gateway, hub: HubServer
) -> None:
    body = await gateway.query(
        "query($id: ID!) { person(id: $id) { name { surname } cases { number title } } }",
        {"id": MARIN_REYES},
        **_user(hub, "GW-person"),
    )
    person = body["data"]["person"]
    assert person["name"]["surname"] == "Reyes"
    assert sorted(c["number"] for c in person["cases"]) == ["26-000077", CASE_OPEN]
    # A search hit planned across both subgraphs.
    body = await gateway.query(
        '{ search(text: "Jordan Reyes", kinds: [PERSON]) { hits { ... on Person { id '
        "provenance { agency { ori } } cases { number } } } } }",
        **_user(hub, "GW-search"),
    )
    hits = {h["id"]: h for h in body["data"]["search"]["hits"] if h}
    assert [c["number"] for c in hits[HARBOR_REYES]["cases"]] == [CASE_OPEN]
    assert len(hits[MARIN_REYES]["cases"]) == 2


async def test_without_the_users_credentials_the_hub_gives_nothing(
    gateway: Gateway, hub: HubServer
) -> None:
    body = await gateway.query(CASE_QUERY, {"number": CASE_OPEN}, **{"X-Purpose": "C"})
    text = json.dumps(body)
    assert "Reyes" not in text
    assert body.get("errors")
    # Credentials but no purpose: the hub refuses before any vendor is asked.
    headers = _user(hub, "GW-nopurpose")
    del headers["X-Purpose"]
    body = await gateway.query(CASE_QUERY, {"number": CASE_OPEN}, **headers)
    assert "Reyes" not in json.dumps(body)
    assert body.get("errors")
