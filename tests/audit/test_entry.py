from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from hub.audit.entry import (
    GENESIS,
    canonical_body,
    chain_hash,
    decode_entry,
    line_facts,
    seal,
    whole_operations,
)
from tests.audit.conftest import make_entry

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def test_a_sealed_line_is_its_entry_with_chain_fields_first() -> None:
    entry = make_entry(1)
    line, entry_hash = seal(canonical_body(entry), 1, GENESIS)
    assert line.startswith(b'{"seq":1,"prev":"' + GENESIS.encode() + b'","hash":"')
    sealed = decode_entry(line)
    assert (sealed.seq, sealed.prev, sealed.hash) == (1, GENESIS, entry_hash)
    assert sealed.unsealed() == entry


def test_the_hash_covers_content_seq_and_prev() -> None:
    body = canonical_body(make_entry(1))
    base = chain_hash(1, GENESIS, body)
    assert chain_hash(2, GENESIS, body) != base
    assert chain_hash(1, "1" * 64, body) != base
    assert chain_hash(1, GENESIS, body.replace(b"Reyes", b"Reyez")) != base


def test_line_facts_detect_an_edit_and_accept_reformatting() -> None:
    line, _ = seal(canonical_body(make_entry(1)), 1, GENESIS)
    assert line_facts(line).hash_ok
    # Key order and whitespace are not content: a re-serialised line still verifies.
    obj = msgspec.json.decode(line)
    pretty = msgspec.json.format(msgspec.json.encode(dict(reversed(obj.items()))), indent=0)
    assert line_facts(pretty.replace(b"\n", b"")).hash_ok
    edited = line.replace(b'"user":"u1"', b'"user":"u2"')
    facts = line_facts(edited)
    assert (facts.seq, facts.hash_ok) == (1, False)


def test_line_facts_never_raise_on_junk() -> None:
    for junk in (b"", b"not json", b"[1,2]", b'{"seq":"1","prev":"x","hash":"y"}', b'{"a":1}'):
        facts = line_facts(junk)
        assert facts.seq is None
        assert not facts.hash_ok


@given(
    criteria=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    seq=st.integers(min_value=1, max_value=2**53),
)
def test_any_json_criteria_round_trip_to_a_valid_hash(criteria: dict[str, Any], seq: int) -> None:
    entry = msgspec.structs.replace(make_entry(1), criteria=criteria)
    line, entry_hash = seal(canonical_body(entry), seq, GENESIS)
    facts = line_facts(line)
    assert facts.hash_ok
    assert facts.stored_hash == entry_hash
    assert facts.seq == seq
    assert decode_entry(line).criteria == criteria


def test_whole_operations_count_a_stream_once() -> None:
    """A stream's payload entries (part 1, 2, ...) stand aside for the operation's own entry;
    without it (the hub stopped mid-stream) they stand for it, merged, their records once."""
    stream = make_entry(1, records=(("a", "CA0990000"), ("b", "CA0990000")))
    parts = [
        msgspec.structs.replace(stream, part=1, records=stream.records[:1], sources=()),
        msgspec.structs.replace(stream, part=2, records=stream.records[1:], sources=()),
    ]
    post = make_entry(2, records=(("c", "WA0990100"),))
    # A partner's two requests in one trace of its own: two operations, both kept.
    partner = [make_entry(3), make_entry(3, user="u2")]
    died = make_entry(4, records=(("d", "CA0990000"), ("e", "CA0990000")))
    orphans = [
        msgspec.structs.replace(died, part=1, records=died.records[:1], sources=()),
        msgspec.structs.replace(died, part=2, records=died.records[1:], sources=()),
    ]
    entries = [*parts, stream, post, *partner, *orphans]
    whole = whole_operations(entries)
    assert whole[:4] == [stream, post, *partner]
    (merged,) = whole[4:]
    assert (merged.trace_id, merged.part) == (died.trace_id, 1)
    assert [r.id for r in merged.records] == ["d", "e"]
    assert whole_operations([post, stream]) == [post, stream]
