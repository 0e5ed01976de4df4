"""An outsider learns nothing: the leak fuzzer of ``bench.outsider`` over real HTTP.

The suite runs a sample of its cases (hypothesis, derandomised, and a seeded sweep that reports
every kind of leak at once); ``hub bench leaks`` runs 10,000. Each case asks the hub for a value
that only withheld fields or invisible records hold, for that subject, and for a twin value of
the same shape that exists nowhere, by one access path (search with literals, variables,
kinds, aliases, fragments, directives, persisted queries; plateReads; lookups by id;
``_entities``; ``searchStream`` over a WebSocket; watches, when a Redis answers), and the two
answers must be identical. Two paths ask the same question of the world and of a twin world,
where what the subject may not see is removed or scrambled: hit order and relationships must not
change.

Below the sample, the leaks issue 10 reported, as named cases.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
import redis
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from bench.outsider import (
    AUDITED_DENIALS,
    LIVE_PATHS,
    PATHS,
    PROBE_OF,
    UNKNOWN_AGENCY,
    WORLD_PATHS,
    Asker,
    Case,
    Clue,
    Exchange,
    HubTarget,
    Outsider,
    Path,
    compare,
    stream_answer,
    sweep,
)
from hub.access.policy import Visibility
from hub.demo.world import REYES_PLATE, SEALED_SURNAME, SEX_OFFENSE_VICTIM_SURNAME
from hub.model import EntityKind, Incident, Person, PlateRead, Vehicle
from tests.adapters.conformance import small_world
from tests.conftest import demo_settings, serve_hub
from tests.redis_server import REDIS_URL, drop_prefix, unique_prefix

pytestmark = pytest.mark.asyncio(loop_scope="module")

WORLD = small_world()
MARIN, CASCADE, SIERRA = "CA0990000", "WA0990100", "NV0990000"
EXAMPLES = 250
SWEEP = 300
TEXT_PATHS = [p for p in PATHS if PROBE_OF.get(p) == "text" and p not in WORLD_PATHS]
ID_PATHS = [p for p in PATHS if PROBE_OF.get(p) == "id"]


@dataclass(frozen=True)
class Fuzzer:
    """The outsider, with a short repr (hypothesis prints the arguments of a failing example)."""

    outsider: Outsider

    def __repr__(self) -> str:
        return f"Fuzzer({self.outsider.target.url})"


def _redis() -> str | None:
    """``REDIS_URL`` when a Redis answers there: the hub's live results (watches) need it."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return None
    return REDIS_URL


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fuzzer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fuzzer]:
    url, prefix = _redis(), unique_prefix("outsider")
    env = {} if url is None else {"REDIS_URL": url, "HUB_REDIS_PREFIX": prefix}
    base = demo_settings(tmp_path_factory.mktemp("outsider"), **env)
    # Hundreds of questions a minute from a few users: no rate limit. No source cache: the twin
    # world (its simulators' records swapped in-process) must be what the vendors answer from.
    resilience = dataclasses.replace(
        base.resilience, user_per_minute=10**7, agency_per_minute=10**7, cache_ttl_s=0.0
    )
    try:
        async for server in serve_hub(
            dataclasses.replace(base, resilience=resilience), world=WORLD
        ):
            target = HubTarget(server.url, server.session, server.runtime)
            yield Fuzzer(Outsider(target))
    finally:
        if url is not None:
            await drop_prefix(url, prefix)


@dataclass(frozen=True)
class Drawn:
    """``bench.outsider.Chooser`` over hypothesis's draws (shrinking to the first option)."""

    draw: Callable[[st.SearchStrategy[Any]], Any]

    def pick(self, options: Any) -> Any:
        return self.draw(st.sampled_from(options))

    def chance(self, one_in: int) -> bool:
        hit: bool = self.draw(st.integers(0, one_in - 1)) == one_in - 1
        return hit

    def seed(self) -> int:
        value: int = self.draw(st.integers(0, 2**32 - 1))
        return value


async def answered_alike(fuzzer: Fuzzer, case: Case) -> None:
    outcome = await fuzzer.outsider.run(case)
    # Discarded is a failure too: a named case must prove something (the vendors hold it).
    assert outcome.verdict == "same", outcome.describe()


# -- the sample ---------------------------------------------------------------------------------


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # A case describes itself whole (subject, path, value, twin, where the answers differ), and
    # shrinking a draw sequence with retries in it takes minutes for little: report it as found.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
async def test_an_outsider_learns_nothing_from_any_path(
    fuzzer: Fuzzer, data: st.DataObject
) -> None:
    case = fuzzer.outsider.draw_case(Drawn(data.draw))
    outcome = await fuzzer.outsider.run(case)
    event(f"path: {case.path.value}")
    event(
        f"{outcome.verdict}: {outcome.detail}"
        if outcome.verdict == "discarded"
        else outcome.verdict
    )
    if case.clue is not None:
        event(f"value: {case.clue.channel}")
    assert outcome.verdict != "leak", outcome.describe()


async def test_a_seeded_sweep_finds_no_leak(fuzzer: Fuzzer) -> None:
    """Another sample, every case run whatever the others gave: all kinds of leak at once."""
    tally = await sweep(fuzzer.outsider, SWEEP, seed=10)
    assert tally.leak_count == 0, tally.summary()
    # The sample proves something: most cases reach a comparison, on every path.
    assert tally.compared >= SWEEP // 2, tally.summary()
    # Watches need the hub's Redis: without one, their cases are discarded (and said so).
    live = fuzzer.outsider.live is not None
    assert all(tally.run[p.value] for p in PATHS if live or p not in LIVE_PATHS), tally.summary()


# -- named cases: the leaks of issue 10 -----------------------------------------------------------


@pytest.mark.parametrize("path", TEXT_PATHS, ids=lambda p: p.name.lower())
async def test_an_agency_without_agreement_learns_nothing_from_a_victims_surname(
    fuzzer: Fuzzer, path: Path
) -> None:
    """Sierra has no agreement with Marin; the victim's identity stays with Marin by law, so
    her exact surname must answer as a misspelt one does (it gave Sierra a PERSON pointer)."""
    asker = Asker(SIERRA, ("analyst",), "C")
    await answered_alike(fuzzer, fuzzer.outsider.case(asker, path, SEX_OFFENSE_VICTIM_SURNAME))


@pytest.mark.parametrize("path", TEXT_PATHS, ids=lambda p: p.name.lower())
async def test_a_narrative_cannot_be_read_word_by_word(fuzzer: Fuzzer, path: Path) -> None:
    """Only Harbor Falls' report of Reyes's stolen bicycle says "bicycle ... marina": Sierra
    must not learn that from an INCIDENT pointer (narratives are never a pointer's key)."""
    narrative = next(
        r.narrative
        for r in WORLD.records["harbor-rms"]
        if isinstance(r, Incident) and r.narrative and "bicycle" in r.narrative
    )
    assert "marina" in narrative
    asker = Asker(SIERRA, ("analyst",), "C")
    await answered_alike(fuzzer, fuzzer.outsider.case(asker, path, "bicycle marina"))


@pytest.mark.parametrize("path", TEXT_PATHS, ids=lambda p: p.name.lower())
async def test_an_unknown_agency_learns_nothing_of_reyes(fuzzer: Fuzzer, path: Path) -> None:
    """A token of an agency no policy names gets no pointer index: "Reyes" answers as a name
    that exists nowhere."""
    asker = Asker(UNKNOWN_AGENCY, ("analyst",), "C")
    await answered_alike(fuzzer, fuzzer.outsider.case(asker, path, "Reyes"))


async def test_an_unknown_agency_is_refused_whatever_it_asks(fuzzer: Fuzzer) -> None:
    outsider = fuzzer.outsider
    asker = Asker(UNKNOWN_AGENCY, ("analyst",), "C")
    query = "query($t: String!) { search(text: $t) { hits { __typename } } }"
    for text in ("Reyes", "Qwzxv"):
        answer = await outsider.post(asker, {"query": query, "variables": {"t": text}})
        assert answer.status == 403, answer.body
        assert answer.body["errors"][0]["extensions"]["code"] == "UNKNOWN_AGENCY", answer.body


@pytest.mark.parametrize("path", TEXT_PATHS, ids=lambda p: p.name.lower())
async def test_a_sealed_record_is_not_confirmed_by_its_surname(fuzzer: Fuzzer, path: Path) -> None:
    asker = Asker(CASCADE, ("analyst",), "C")
    await answered_alike(fuzzer, fuzzer.outsider.case(asker, path, SEALED_SURNAME))


async def test_hit_order_does_not_follow_narratives_withheld_from_the_reader(
    fuzzer: Fuzzer,
) -> None:
    """A dispatcher reads no narrative; its hits must not be ranked by what the narratives say
    (the same six calls for service came back in another order once they were scrambled)."""
    asker = Asker(CASCADE, ("dispatcher",), "C")
    case = fuzzer.outsider.case(asker, Path.RANKING, "Mental Health Evaluation", variant=2)
    await answered_alike(fuzzer, case)


async def test_an_in_state_only_plate_is_not_confirmed_out_of_state(fuzzer: Fuzzer) -> None:
    """Marin's plate reads are in-state-only: a plate only Marin's cameras read is, to Sierra,
    a plate nobody read."""
    outsider = fuzzer.outsider
    asker = Asker(SIERRA, ("detective",), "ALPR-INV")
    oracle = outsider.oracle(asker)
    plate = next(
        r.plate.number
        for r in sorted(WORLD.records["marin-alpr"], key=lambda r: r.plate.number)
        if isinstance(r, PlateRead) and oracle.is_secret_text(r.plate.number)
    )
    for variant in (1, 2):
        case = outsider.case(asker, Path.PLATE_READS, plate, variant=variant)
        await answered_alike(fuzzer, case)


async def test_an_auditor_learns_no_plate_from_plate_reads(fuzzer: Fuzzer) -> None:
    """An auditor reads the ids and provenance of plate reads, not their plates: asking for a
    plate's reads must not confirm that any camera read it (nor count or withhold anything)."""
    asker = Asker(MARIN, ("auditor",), "C")
    case = fuzzer.outsider.case(asker, Path.PLATE_READS, REYES_PLATE.number, variant=2)
    await answered_alike(fuzzer, case)


@pytest.mark.parametrize("path", ID_PATHS, ids=lambda p: p.name.lower())
async def test_a_pointer_is_not_confirmed_by_its_id(fuzzer: Fuzzer, path: Path) -> None:
    """Harbor Falls' record of Reyes is a pointer to Sierra: found by name, never by id. A
    lookup of its id reads null, and nothing else of the answer may say it exists."""
    harbor_reyes = next(
        r for r in WORLD.records["harbor-rms"]
        if isinstance(r, Person) and r.name.surname == "Reyes"
    )  # fmt: skip
    asker = Asker(SIERRA, ("analyst",), "C")
    beside = next(r.id for r in WORLD.records["sierra-alpr"])
    case = fuzzer.outsider.case(asker, path, harbor_reyes.id, companion=beside)
    await answered_alike(fuzzer, case)


@pytest.mark.parametrize("path", ID_PATHS, ids=lambda p: p.name.lower())
async def test_a_sealed_record_is_not_confirmed_by_its_id(fuzzer: Fuzzer, path: Path) -> None:
    whitlock = next(
        r for r in WORLD.records["marin-rms"]
        if isinstance(r, Person) and r.name.surname == SEALED_SURNAME
    )  # fmt: skip
    asker = Asker(CASCADE, ("detective",), "C")
    beside = next(r.id for r in WORLD.records["cascade-rms"])
    case = fuzzer.outsider.case(asker, path, whitlock.id, companion=beside)
    await answered_alike(fuzzer, case)


@pytest.mark.parametrize("surname", ["Reyes", SEX_OFFENSE_VICTIM_SURNAME, "Mabry"])
async def test_relationships_do_not_betray_what_the_reader_may_not_see(
    fuzzer: Fuzzer, surname: str
) -> None:
    """Cascade reads Marin's people and incidents under an agreement; what they lead to that
    Cascade may not see (the victim of the assault, Marin's in-state plate reads) must answer
    as if it were not there."""
    person = next(
        r for r in WORLD.records["marin-rms"] if isinstance(r, Person) and r.name.surname == surname
    )
    asker = Asker(CASCADE, ("analyst",), "C")
    for parent in (person.id, *(i.incident_id for i in person.involvements)):
        for variant in (0, 1):
            case = Case(asker, Path.RELATIONS, None, seed=7, variant=variant, companion=parent)
            await answered_alike(fuzzer, case)


async def test_an_owner_one_may_not_read_is_not_counted_through_a_relationship(
    fuzzer: Fuzzer,
) -> None:
    """A vehicle Cascade reads in full, whose registered owner is a juvenile of the vehicle's
    agency (a pointer to Cascade): ``registeredOwner`` reads null, and nothing else may say
    the owner's record was there (``extensions.sources`` counted it)."""
    outsider = fuzzer.outsider
    asker = Asker(CASCADE, ("detective",), "C")
    oracle = outsider.oracle(asker)
    vehicle = next(
        v
        for v in outsider.records.values()
        if isinstance(v, Vehicle)
        and v.registered_owner_id is not None
        and oracle.visibility(v) is Visibility.FULL
        and oracle.visibility(outsider.records[v.registered_owner_id]) is Visibility.POINTER
    )
    for variant in (0, 1):
        case = Case(asker, Path.RELATIONS, None, seed=7, variant=variant, companion=vehicle.id)
        await answered_alike(fuzzer, case)


@pytest.mark.parametrize("auditor", sorted(AUDITED_DENIALS))
async def test_an_auditor_learns_nothing_of_a_question_its_agency_was_denied(
    fuzzer: Fuzzer, auditor: str
) -> None:
    # Another agency's user asks a question policy forbids the auditor's agency's systems to
    # answer (DENIED, never contacted); nothing of the auditor's agency comes back. Its audit
    # queries by that user, and by a record that came back, answer as for a user who never
    # asked anything (issue 10: a Cascade detective's plate search was Marin's to read).
    _, _, _, probe, value = AUDITED_DENIALS[auditor]
    clue = Clue(value, "denied-question", probe, frozenset(EntityKind))
    for seed in (0, 1, 2):  # the victim from each of the other agencies
        case = Case(Asker(auditor, ("auditor",), "A"), Path.AUDIT, clue, seed)
        await answered_alike(fuzzer, case)


# -- watches ------------------------------------------------------------------------------------


def _live(fuzzer: Fuzzer) -> None:
    if fuzzer.outsider.live is None:
        pytest.skip(f"no Redis at {REDIS_URL}: the hub runs without live results")


async def test_a_watch_on_what_the_reader_may_see_is_told_apart(fuzzer: Fuzzer) -> None:
    """The WATCH path can see a leak: a value Marin's analyst may read ("Reyes", Marin's own
    record of him) is delivered to its watch once the vendor sends a notice of it, and the
    twin's watch gets nothing, so the two inboxes differ (the answers to ``watch`` do not)."""
    _live(fuzzer)
    outsider = fuzzer.outsider
    asker = Asker(MARIN, ("analyst",), "C")
    outcome = await outsider.run(outsider.case(asker, Path.WATCH, "Reyes"))
    assert outcome.verdict == "leak", outcome.describe()
    assert outcome.detail.startswith("step 1: .data.inbox"), outcome.describe()


@pytest.mark.parametrize("ori", [SIERRA, CASCADE, UNKNOWN_AGENCY])
async def test_a_watch_delivers_nothing_of_a_sealed_record(fuzzer: Fuzzer, ori: str) -> None:
    """A watch on the sealed person's surname: the vendor's notice of that record delivers
    nothing, to an agency without agreement, one with, or one the policy does not know."""
    _live(fuzzer)
    asker = Asker(ori, ("detective",), "C")
    await answered_alike(fuzzer, fuzzer.outsider.case(asker, Path.WATCH, SEALED_SURNAME))


# -- streams ------------------------------------------------------------------------------------


async def test_the_stream_path_reads_a_stream_whatever_order_its_sources_answer_in(
    fuzzer: Fuzzer,
) -> None:
    """The same stream twice answers alike (the sources' payloads are put in an order of their
    own), and a name Marin's analyst may see is told apart from its twin: the path compares
    what the stream released, not only that it ended."""
    outsider = fuzzer.outsider
    asker = Asker(MARIN, ("analyst",), "C")
    first, again = await outsider.stream(asker, "Reyes"), await outsider.stream(asker, "Reyes")
    assert first.body["payloads"]
    assert first.body["last"]["data"]["done"]
    assert any(p["data"]["hits"] for p in first.body["payloads"])
    assert compare([first], [again]) is None
    outcome = await outsider.run(outsider.case(asker, Path.STREAM, "Reyes"))
    assert outcome.verdict == "leak", outcome.describe()
    assert outcome.detail.startswith((".last", ".payloads")), outcome.describe()


async def test_a_streams_payloads_compare_whatever_their_order_and_latencies() -> None:
    def payload(source: str, latency: float, hits: int, done: bool = False) -> dict[str, Any]:
        status = {"source": source, "status": "OK", "count": hits, "latencyMs": latency}
        data = {"done": done, "source": None if done else status, "hits": [{"id": "x"}] * hits,
                "sources": [status]}  # fmt: skip
        return {"type": "next", "payload": {"data": {"searchStream": data}}}

    first = [payload("b-rms", 9.0, 0), payload("a-rms", 1.0, 0), payload("", 0.0, 0, done=True)]
    again = [payload("a-rms", 3.0, 0), payload("b-rms", 2.0, 0), payload("", 0.0, 0, done=True)]
    other = [payload("a-rms", 3.0, 1), payload("b-rms", 2.0, 0), payload("", 0.0, 0, done=True)]
    answer = [Exchange(101, stream_answer(m)) for m in (first, again, other)]
    assert compare([answer[0]], [answer[1]]) is None
    assert compare([answer[0]], [answer[2]]) is not None
