"""Typed message classes, one per message kind, with their schema ids."""

from dataclasses import asdict, dataclass, field
from datetime import datetime

EVENT_SCHEMA = "mes.event/1"
ORDER_SCHEMA = "mes.order/1"

EVENT_TYPES = (
    "order_started",
    "order_held",
    "order_resumed",
    "order_completed",
    "operation_progress",
    "operation_completed",
    "material_consumed",
    "output_produced",
    "scrap_reported",
    "rework_started",
    "rework_completed",
    "downtime_started",
    "downtime_ended",
    "quality_result",
)


@dataclass(frozen=True)
class Event:
    """One event reported by the MES (see ``schemas/event.v1.json``)."""

    event_id: str
    event_type: str
    order_ref: str | None
    occurred_at: datetime
    data: dict
    sequence: int | None = None
    mes_order_id: str | None = None

    @classmethod
    def from_dict(cls, values):
        return cls(
            event_id=values["event_id"],
            event_type=values["event_type"],
            order_ref=values.get("order_ref"),
            occurred_at=datetime.fromisoformat(values["occurred_at"]),
            data=dict(values["data"]),
            sequence=values.get("sequence"),
            mes_order_id=values.get("mes_order_id"),
        )

    def to_dict(self):
        out = {
            "schema": EVENT_SCHEMA,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at.isoformat(),
            "data": dict(self.data),
        }
        if self.order_ref is not None:
            out["order_ref"] = self.order_ref
        if self.sequence is not None:
            out["sequence"] = self.sequence
        if self.mes_order_id is not None:
            out["mes_order_id"] = self.mes_order_id
        return out


@dataclass(frozen=True)
class Product:
    code: str
    name: str = ""
    tracking: str = "none"


@dataclass(frozen=True)
class Component:
    product: Product
    quantity: float
    uom: str
    operation_sequence: int | None = None


@dataclass(frozen=True)
class Operation:
    sequence: int
    name: str
    resource: str
    duration_minutes: float = 0.0


@dataclass(frozen=True)
class OrderExport:
    """One revision of a manufacturing order sent to the MES (``schemas/order.v1.json``)."""

    order_id: str
    revision: int
    product: Product
    quantity: float
    uom: str
    action: str = "create"
    planned_start: datetime | None = None
    planned_end: datetime | None = None
    priority: int = 0
    origin: str | None = None
    company: str = ""
    components: tuple[Component, ...] = field(default_factory=tuple)
    operations: tuple[Operation, ...] = field(default_factory=tuple)
    byproducts: tuple[Component, ...] = field(default_factory=tuple)
    finished_lots: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self):
        out = asdict(self)
        out["schema"] = ORDER_SCHEMA
        out["components"] = [asdict(c) for c in self.components]
        out["operations"] = [asdict(o) for o in self.operations]
        out["byproducts"] = [asdict(b) for b in self.byproducts]
        out["finished_lots"] = list(self.finished_lots)
        for key in ("planned_start", "planned_end"):
            out[key] = out[key].isoformat() if out[key] else None
        return out
