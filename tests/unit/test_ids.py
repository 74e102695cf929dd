"""Job ids: UUIDv7, time-ordered, random where RFC 9562 says random, never repeated."""

from __future__ import annotations

import uuid

from jobwire.ids import is_job_id, new_job_id, new_token


def test_a_job_id_is_a_version_7_uuid_with_the_rfc_variant() -> None:
    for _ in range(1000):
        parsed = uuid.UUID(new_job_id())
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_a_job_id_carries_its_millisecond_timestamp_in_the_first_48_bits() -> None:
    ms = 1_700_000_000_123
    assert uuid.UUID(new_job_id(ms)).int >> 80 == ms


def test_ids_made_in_later_milliseconds_sort_after_earlier_ones() -> None:
    ids = [new_job_id(1_700_000_000_000 + step) for step in range(1000)]
    assert ids == sorted(ids)


def test_ids_made_one_after_another_are_never_out_of_millisecond_order() -> None:
    ids = [new_job_id() for _ in range(5000)]
    stamps = [uuid.UUID(i).int >> 80 for i in ids]
    assert stamps == sorted(stamps)


def test_ids_within_one_millisecond_still_differ_in_their_random_bits() -> None:
    ids = {new_job_id(1_700_000_000_000) for _ in range(10_000)}
    assert len(ids) == 10_000


def test_the_random_bits_are_not_constant() -> None:
    # Every one of the 74 random bit positions takes both values across many ids.
    values = [uuid.UUID(new_job_id(0)).int for _ in range(2000)]
    random_mask = ((1 << 12) - 1) << 64 | ((1 << 62) - 1)
    ones = 0
    zeros = 0
    for value in values:
        ones |= value & random_mask
        zeros |= ~value & random_mask
    assert ones == random_mask
    assert zeros == random_mask


def test_only_hyphenated_uuids_are_taken_as_job_ids() -> None:
    job_id = new_job_id()
    assert is_job_id(job_id)
    assert is_job_id(job_id.upper())
    assert not is_job_id("{" + job_id + "}")
    assert not is_job_id("urn:uuid:" + job_id)
    assert not is_job_id(job_id.replace("-", ""))
    assert not is_job_id("health")
    assert not is_job_id("")


def test_claim_tokens_are_128_bit_and_unique() -> None:
    tokens = {new_token() for _ in range(10_000)}
    assert len(tokens) == 10_000
    assert all(len(token) == 32 for token in tokens)
