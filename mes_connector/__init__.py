"""MES connector: the pure-Python side of the Odoo <-> MES interface.

Nothing in this package imports Odoo. It holds the message types and their
versioned JSON schemas, validation, idempotency keys, the HTTP client Odoo uses
to call the MES, the client the MES (or the simulator) uses to call Odoo, and
the MES simulator.
"""

from .exceptions import (
    MesAuthError,
    MesError,
    MesPermanentError,
    MesRejectedError,
    MessageValidationError,
    MesTransientError,
)
from .idempotency import order_idempotency_key
from .messages import EVENT_SCHEMA, ORDER_SCHEMA, Event, OrderExport
from .validation import FieldError, parse_event, validate_event, validate_order

__all__ = [
    "EVENT_SCHEMA",
    "ORDER_SCHEMA",
    "Event",
    "FieldError",
    "MesAuthError",
    "MesError",
    "MesPermanentError",
    "MesRejectedError",
    "MesTransientError",
    "MessageValidationError",
    "OrderExport",
    "order_idempotency_key",
    "parse_event",
    "validate_event",
    "validate_order",
]
