"""Master data Odoo sends the MES: materials, equipment, bills of materials and lots.

Each document is a full snapshot of one record at one revision (``schemas/*.v1.json``);
the MES keeps the highest revision it got per identity (:func:`master_data_identity`).
"""

from dataclasses import asdict, dataclass, field
from datetime import datetime

from .exceptions import MessageValidationError
from .idempotency import master_data_idempotency_key
from .messages import Component, Operation, Product
from .validation import MISSING, FieldError, validation_errors

MATERIAL_SCHEMA = "mes.material/1"
EQUIPMENT_SCHEMA = "mes.equipment/1"
BOM_SCHEMA = "mes.bom/1"
MATERIAL_LOT_SCHEMA = "mes.material_lot/1"

# Schema id -> packaged schema file.
MASTER_DATA_SCHEMAS = {
    MATERIAL_SCHEMA: "material.v1.json",
    EQUIPMENT_SCHEMA: "equipment.v1.json",
    BOM_SCHEMA: "bom.v1.json",
    MATERIAL_LOT_SCHEMA: "material_lot.v1.json",
}
# Schema id -> kind of record, as the MES API and the idempotency keys name it.
KINDS = {
    MATERIAL_SCHEMA: "material",
    EQUIPMENT_SCHEMA: "equipment",
    BOM_SCHEMA: "bom",
    MATERIAL_LOT_SCHEMA: "lot",
}

__all__ = [
    "BOM_SCHEMA",
    "EQUIPMENT_SCHEMA",
    "KINDS",
    "MASTER_DATA_SCHEMAS",
    "MATERIAL_LOT_SCHEMA",
    "MATERIAL_SCHEMA",
    "Attendance",
    "BillOfMaterials",
    "Calendar",
    "Equipment",
    "Material",
    "MaterialLot",
    "lot_code",
    "master_data_errors",
    "master_data_idempotency_key",
    "master_data_identity",
    "validate_master_data",
]


@dataclass(frozen=True)
class Material:
    """A product (``mes.material/1``); ``material_class`` is its category (``class``)."""

    code: str
    name: str
    uom: str
    tracking: str = "none"
    material_class: str | None = None
    active: bool = True
    revision: int = 1

    def to_dict(self):
        return {
            "schema": MATERIAL_SCHEMA,
            "revision": self.revision,
            "code": self.code,
            "name": self.name,
            "uom": self.uom,
            "tracking": self.tracking,
            "class": self.material_class,
            "active": self.active,
        }


@dataclass(frozen=True)
class Attendance:
    """A working period of a calendar: ``start``/``end`` are its ``from``/``to`` ("HH:MM")."""

    weekday: int
    start: str
    end: str
    week: int | None = None

    def to_dict(self):
        out = {"weekday": self.weekday, "from": self.start, "to": self.end}
        if self.week is not None:
            out["week"] = self.week
        return out


@dataclass(frozen=True)
class Calendar:
    name: str
    timezone: str
    hours_per_day: float
    attendances: tuple[Attendance, ...] = field(default_factory=tuple)

    def to_dict(self):
        return {
            "name": self.name,
            "timezone": self.timezone,
            "hours_per_day": self.hours_per_day,
            "attendances": [a.to_dict() for a in self.attendances],
        }


@dataclass(frozen=True)
class Equipment:
    """A work center (``mes.equipment/1``)."""

    code: str
    name: str
    capacity: float = 1.0
    time_efficiency: float = 100.0
    calendar: Calendar | None = None
    active: bool = True
    revision: int = 1

    def to_dict(self):
        return {
            "schema": EQUIPMENT_SCHEMA,
            "revision": self.revision,
            "code": self.code,
            "name": self.name,
            "capacity": self.capacity,
            "time_efficiency": self.time_efficiency,
            "active": self.active,
            "calendar": self.calendar.to_dict() if self.calendar else None,
        }


@dataclass(frozen=True)
class BillOfMaterials:
    """A bill of materials with its operations (``mes.bom/1``), one revision per version."""

    code: str
    product: Product
    quantity: float
    uom: str
    reference: str | None = None
    components: tuple[Component, ...] = field(default_factory=tuple)
    byproducts: tuple[Component, ...] = field(default_factory=tuple)
    operations: tuple[Operation, ...] = field(default_factory=tuple)
    active: bool = True
    revision: int = 1

    def to_dict(self):
        return {
            "schema": BOM_SCHEMA,
            "revision": self.revision,
            "code": self.code,
            "reference": self.reference,
            "product": asdict(self.product),
            "quantity": self.quantity,
            "uom": self.uom,
            "active": self.active,
            "components": [asdict(c) for c in self.components],
            "byproducts": [asdict(b) for b in self.byproducts],
            "operations": [asdict(o) for o in self.operations],
        }


@dataclass(frozen=True)
class MaterialLot:
    """A lot or serial number of a component (``mes.material_lot/1``)."""

    product: str
    lot: str
    tracking: str = "lot"
    status: str = "released"
    expires_at: datetime | None = None
    revision: int = 1

    def to_dict(self):
        return {
            "schema": MATERIAL_LOT_SCHEMA,
            "revision": self.revision,
            "product": self.product,
            "lot": self.lot,
            "tracking": self.tracking,
            "status": self.status,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


def _schema_error(document):
    schema = document.get("schema", MISSING)
    if isinstance(schema, str) and schema in MASTER_DATA_SCHEMAS:
        return None
    known = ", ".join(MASTER_DATA_SCHEMAS)
    if schema is MISSING:
        return FieldError("schema", MISSING, f"is missing: one of {known}")
    return FieldError("schema", schema, f"is not a master data schema ({known})")


def master_data_errors(document):
    """Every problem of a master data document (FieldErrors naming field and value)."""
    if not isinstance(document, dict):
        return [FieldError("(message)", document, "is not a JSON object")]
    error = _schema_error(document)
    if error:
        return [error]
    return validation_errors(document, MASTER_DATA_SCHEMAS[document["schema"]])


def validate_master_data(document):
    """``document`` if it is a valid master data document, else :class:`MessageValidationError`."""
    errors = master_data_errors(document)
    if errors:
        raise MessageValidationError(errors)
    return document


def lot_code(product, lot):
    """The code of a lot: ``PRODUCT/LOT``, with "\\" and "/" of the product escaped so
    that no two (product, lot) pairs share a code."""
    escaped = product.replace("\\", "\\\\").replace("/", "\\/")
    return f"{escaped}/{lot}"


def master_data_identity(document):
    """``(kind, code)`` of a valid master data document: what the MES keeps one of."""
    error = _schema_error(document) if isinstance(document, dict) else None
    if not isinstance(document, dict) or error:
        raise MessageValidationError(
            [error or FieldError("(message)", document, "is not a JSON object")]
        )
    kind = KINDS[document["schema"]]
    if kind == "lot":
        return kind, lot_code(document["product"], document["lot"])
    return kind, document["code"]
