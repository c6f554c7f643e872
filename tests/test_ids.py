"""Record ids (``db.new_id``): UUIDs version 7 that sort in the order they were made."""

from __future__ import annotations

import uuid

from etomcrm.db import new_id


def test_ids_are_version_7_uuids_that_increase_and_never_repeat() -> None:
    # when many ids are made at once (many within one millisecond, more than one draw
    # of random bytes)
    ids = [new_id() for _ in range(5000)]

    # then each is a UUID of version 7, RFC 4122 variant, written as uuid writes it
    for value in ids[:50] + ids[-50:]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
    # and they strictly increase in the order made, none twice
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
