"""``kit.ids.new_id``: version 7 UUIDs, unique, carrying the millisecond they were made."""

from __future__ import annotations

import time
import uuid

from kassa.kit.ids import new_id


def test_new_ids_are_version_7_rfc_9562_uuids() -> None:
    made = [new_id() for _ in range(1_000)]
    assert {m.version for m in made} == {7}
    assert {m.variant for m in made} == {uuid.RFC_4122}


def test_new_ids_are_unique_and_random_past_their_time() -> None:
    made = [new_id() for _ in range(20_000)]
    assert len(set(made)) == len(made)
    # 74 random bits: the low 62 alone differ between any two ids made in one millisecond.
    assert len({m.int & ((1 << 62) - 1) for m in made}) == len(made)


def test_a_new_id_carries_the_millisecond_it_was_made_in() -> None:
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000
    assert before <= made.int >> 80 <= after
