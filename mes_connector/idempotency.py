"""Idempotency keys: the same logical message always gets the same key."""

import uuid

# Fixed namespace of this project, so keys are stable across installations.
_NAMESPACE = uuid.UUID("6c1f4a52-4d0e-5b57-9a0c-3f8b1f3c9d21")


def order_idempotency_key(source, order_id, revision):
    """Key of one revision of one order, sent as the ``Idempotency-Key`` header.

    ``source`` tells apart the systems that may send orders to the same MES
    (an Odoo database uuid and backend code, for instance), ``order_id`` is the
    order's reference and ``revision`` its revision number. The MES stores the
    first delivery of a key and answers every later one as a duplicate.
    """
    if not source or not order_id:
        raise ValueError("source and order_id are required for an idempotency key")
    if int(revision) < 1:
        raise ValueError(f"revision must be 1 or more, got {revision!r}")
    name = "|".join(("order", _escape(source), _escape(order_id), str(int(revision))))
    return str(uuid.uuid5(_NAMESPACE, name))


# Kinds of master data records (see master_data.KINDS).
MASTER_DATA_KINDS = ("material", "equipment", "bom", "lot")


def master_data_idempotency_key(namespace, kind, code, revision):
    """Key of one revision of one master data record, sent as ``Idempotency-Key``.

    ``namespace`` tells apart the systems that send to the same MES (as ``source`` of
    :func:`order_idempotency_key`), ``kind`` is one of :data:`MASTER_DATA_KINDS` and
    ``code`` the record's code (:func:`~mes_connector.master_data.master_data_identity`).
    A UUID (36 characters) whatever the length of the parts; never an order's key.
    """
    if not namespace or not code:
        raise ValueError("namespace and code are required for an idempotency key")
    if kind not in MASTER_DATA_KINDS:
        raise ValueError(f"kind must be one of {', '.join(MASTER_DATA_KINDS)}, got {kind!r}")
    if int(revision) < 1:
        raise ValueError(f"revision must be 1 or more, got {revision!r}")
    name = "|".join(("master", _escape(namespace), kind, _escape(code), str(int(revision))))
    return str(uuid.uuid5(_NAMESPACE, name))


def _escape(part):
    # "|" separates the parts: escaped, no two different inputs share a key.
    return str(part).replace("\\", "\\\\").replace("|", "\\|")
