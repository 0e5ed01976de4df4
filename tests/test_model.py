"""Hub ids (``hub.model.make_id`` / ``parse_id``): stable, opaque, and what they say.

Ids are written into audit entries, watches and partners' caches: the same record must get the
same id from every version of the hub, so ``make_id`` is held to the encoding it has always had
(URL-safe base64 of ``source \\x1f KIND \\x1f record id``, without padding)."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from hub.model import EntityKind, make_id, parse_id

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x1f"), min_size=1
)


@given(source=_TEXT, kind=st.sampled_from(list(EntityKind)), record_id=_TEXT)
def test_an_id_is_the_urlsafe_base64_it_has_always_been_and_reads_back(
    source: str, kind: EntityKind, record_id: str
) -> None:
    hub_id = make_id(source, kind, record_id)
    raw = "\x1f".join((source, kind.value, record_id)).encode()
    assert hub_id == base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    assert "=" not in hub_id
    ref = parse_id(hub_id)
    assert (ref.source, ref.kind, ref.record_id) == (source, kind, record_id)
