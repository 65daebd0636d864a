"""Idempotency keys: one key per (source, order, revision), stable across runs."""

import uuid

import pytest

from mes_connector import order_idempotency_key

SOURCE = "6a1e2f30-0000-4000-8000-000000000001/SIM"


def test_same_inputs_give_the_same_key():
    first = order_idempotency_key(SOURCE, "WH/MO/00001", 1)
    assert first == order_idempotency_key(SOURCE, "WH/MO/00001", 1)
    assert isinstance(first, str)
    assert uuid.UUID(first).version == 5


def test_key_is_stable_across_installations_and_versions():
    # fixed namespace and text: keys already stored by an MES must stay valid after upgrades
    assert order_idempotency_key("src", "WH/MO/00001", 1) == "3539f5fe-ee32-58fc-8a8b-e5315b37f5e4"


def test_revision_given_as_text_gives_the_same_key():
    assert order_idempotency_key(SOURCE, "WH/MO/00001", "2") == order_idempotency_key(
        SOURCE, "WH/MO/00001", 2
    )


def test_different_revisions_give_different_keys():
    keys = {order_idempotency_key(SOURCE, "WH/MO/00001", revision) for revision in range(1, 6)}
    assert len(keys) == 5


def test_different_orders_give_different_keys():
    assert order_idempotency_key(SOURCE, "WH/MO/00001", 1) != order_idempotency_key(
        SOURCE, "WH/MO/00002", 1
    )


def test_different_sources_give_different_keys():
    assert order_idempotency_key("db-a/SIM", "WH/MO/00001", 1) != order_idempotency_key(
        "db-b/SIM", "WH/MO/00001", 1
    )


def test_separator_in_source_or_order_does_not_collide():
    assert order_idempotency_key("db|A", "MO1", 1) != order_idempotency_key("db", "A|MO1", 1)


@pytest.mark.parametrize("revision", [0, -1, "0"])
def test_revision_below_one_is_refused(revision):
    with pytest.raises(ValueError, match="revision must be 1 or more"):
        order_idempotency_key(SOURCE, "WH/MO/00001", revision)


@pytest.mark.parametrize(("source", "order_id"), [(SOURCE, ""), ("", "WH/MO/00001"), (None, "X")])
def test_empty_order_or_source_is_refused(source, order_id):
    with pytest.raises(ValueError, match="source and order_id are required"):
        order_idempotency_key(source, order_id, 1)
