"""MES connector: the pure-Python side of the Odoo <-> MES interface.

Nothing in this package imports Odoo. It holds the message types (orders, events,
master data) and their versioned JSON schemas, validation, idempotency keys, the
HTTP client Odoo uses to call the MES, the client the MES (or the simulator) uses
to call Odoo, and the MES simulator.
"""

from .exceptions import (
    MesAuthError,
    MesError,
    MesPermanentError,
    MesRejectedError,
    MessageValidationError,
    MesTransientError,
)
from .idempotency import master_data_idempotency_key, order_idempotency_key
from .master_data import (
    BOM_SCHEMA,
    EQUIPMENT_SCHEMA,
    KINDS,
    MASTER_DATA_SCHEMAS,
    MATERIAL_LOT_SCHEMA,
    MATERIAL_SCHEMA,
    Attendance,
    BillOfMaterials,
    Calendar,
    Equipment,
    Material,
    MaterialLot,
    master_data_errors,
    master_data_identity,
    validate_master_data,
)
from .messages import EVENT_SCHEMA, ORDER_SCHEMA, Event, OrderExport
from .validation import FieldError, parse_event, validate_event, validate_order

__all__ = [
    "BOM_SCHEMA",
    "EQUIPMENT_SCHEMA",
    "EVENT_SCHEMA",
    "KINDS",
    "MASTER_DATA_SCHEMAS",
    "MATERIAL_LOT_SCHEMA",
    "MATERIAL_SCHEMA",
    "ORDER_SCHEMA",
    "Attendance",
    "BillOfMaterials",
    "Calendar",
    "Equipment",
    "Event",
    "FieldError",
    "Material",
    "MaterialLot",
    "MesAuthError",
    "MesError",
    "MesPermanentError",
    "MesRejectedError",
    "MesTransientError",
    "MessageValidationError",
    "OrderExport",
    "master_data_errors",
    "master_data_idempotency_key",
    "master_data_identity",
    "order_idempotency_key",
    "parse_event",
    "validate_event",
    "validate_master_data",
    "validate_order",
]
