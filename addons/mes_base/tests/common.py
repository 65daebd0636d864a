from datetime import UTC, datetime, timedelta

from odoo import Command
from odoo.tests.common import TransactionCase

from mes_connector.simulator import SimulatorServer, Store

MES_KEY = "test-odoo-to-mes-key"
INBOUND_KEY = "test-mes-to-odoo-key-0123456789"
# No test depends on the day it runs. What the shop floor did happens on days counted from
# DAY0, the last Friday at least three days ago (UTC): in the past whatever the offsets
# used (up to +2, a Sunday), on the same weekdays every week, since work center time
# follows the work center's calendar. When events were sent (occurred_at) is recent: it is
# what the dashboards' windows (24 hours, 7 days) count.
_THREE_DAYS_AGO = datetime.now(UTC).date() - timedelta(days=3)
DAY0 = _THREE_DAYS_AGO - timedelta(days=(_THREE_DAYS_AGO.weekday() - 4) % 7)


def day(offset=0):
    """The date ``offset`` days after DAY0."""
    return DAY0 + timedelta(days=offset)


def at(offset=0, clock="00:00:00", tz="Z"):
    """An MES time (ISO 8601 with zone) on day ``offset``: ``at(0, "08:30:00", "+01:00")``."""
    return f"{day(offset).isoformat()}T{clock}{tz}"


def recent(minutes=60):
    """An MES time ``minutes`` before now (ISO 8601, UTC)."""
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes)
    return moment.isoformat().replace("+00:00", "Z")


def odoo_at(offset=0, clock="00:00:00"):
    """An Odoo datetime (naive UTC) on day ``offset``: ``odoo_at(0, "07:30:00")``."""
    return f"{day(offset).isoformat()} {clock}"


class MesCase(TransactionCase):
    """A plant with one MES backend, a lot-tracked component and a two-step routing."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True))
        # In production a lane's job commits each message it applies, in a cursor of its
        # own (allow_commit; tests/e2e run it so). A test's data lives only in the test's
        # transaction: here the jobs run in it, and commit nothing (see _apply_lane).
        for function in ("run_lane", "process"):
            cls.env.ref(f"mes_base.job_function_mes_message_{function}").allow_commit = False
        cls.company = cls.env.company
        cls.stock_location = cls.env.ref("stock.warehouse0").lot_stock_id
        cls.uom_unit = cls.env.ref("uom.product_uom_unit")
        cls.uom_dozen = cls.env.ref("uom.product_uom_dozen")
        cls.env.user.groups_id += cls.env.ref("mrp.group_mrp_routings")
        cls.wc_asm = cls.env["mrp.workcenter"].create({"name": "Test Assembly", "code": "T-ASM"})
        cls.wc_pack = cls.env["mrp.workcenter"].create({"name": "Test Pack", "code": "T-PACK"})
        product = cls.env["product.product"]
        cls.housing = product.create(
            {"name": "Housing", "default_code": "T-HOUS", "is_storable": True, "tracking": "lot"}
        )
        cls.screw = product.create({"name": "Screw", "default_code": "T-SCR", "is_storable": True})
        cls.pump = product.create({"name": "Pump", "default_code": "T-PUMP", "is_storable": True})
        cls.bom = cls.env["mrp.bom"].create(
            {
                "product_tmpl_id": cls.pump.product_tmpl_id.id,
                "product_qty": 1,
                "consumption": "flexible",
                "operation_ids": [
                    Command.create(
                        {"name": "Assemble", "workcenter_id": cls.wc_asm.id, "sequence": 10}
                    ),
                    Command.create(
                        {"name": "Pack", "workcenter_id": cls.wc_pack.id, "sequence": 20}
                    ),
                ],
            }
        )
        cls.bom.bom_line_ids = [
            Command.create(
                {
                    "product_id": cls.housing.id,
                    "product_qty": 1,
                    "operation_id": cls.bom.operation_ids[0].id,
                }
            ),
            Command.create({"product_id": cls.screw.id, "product_qty": 4}),
        ]
        cls.lot_a = cls.env["stock.lot"].create({"name": "LOT-A", "product_id": cls.housing.id})
        cls.env["stock.quant"]._update_available_quantity(
            cls.housing, cls.stock_location, 30, lot_id=cls.lot_a
        )
        cls.env["stock.quant"]._update_available_quantity(cls.screw, cls.stock_location, 500)
        # Demo data may hold a backend of its own: these tests talk to theirs only.
        cls.env["mes.backend"].search([]).active = False
        cls.simulator = SimulatorServer(port=0, store=Store(":memory:"), api_key=MES_KEY).start()
        cls.addClassCleanup(cls.simulator.stop)
        cls.backend = cls.env["mes.backend"].create(
            {
                "name": "Test MES",
                "code": "TEST",
                "base_url": cls.simulator.url,
                "outbound_api_key": MES_KEY,
                "timeout_connect": 2,
                "timeout_read": 5,
            }
        )
        cls.backend._set_inbound_key(INBOUND_KEY)

    def setUp(self):
        super().setUp()
        self.simulator.down = False

    def _map(self, mapping_type, code, **target):
        """Map an MES code of the test backend to an Odoo record (product_id=..., ...)."""
        values = {key: getattr(value, "id", value) for key, value in target.items()}
        return self.env["mes.mapping"].create(
            {
                "backend_id": self.backend.id,
                "mapping_type": mapping_type,
                "mes_code": code,
                **values,
            }
        )

    def _production(self, qty=5, product=None):
        return self.env["mrp.production"].create(
            {"product_id": (product or self.pump).id, "product_qty": qty, "bom_id": self.bom.id}
        )

    def _event(self, production, event_id, quantity=None, uom="Units", **data):
        return {
            "schema": "mes.event/1",
            "event_id": event_id,
            "event_type": "order_completed",
            "order_ref": production.name,
            "sequence": 1,
            "occurred_at": at(0, "08:30:00", "+01:00"),
            "data": {
                "quantity": production.product_qty if quantity is None else quantity,
                "uom": uom,
                **data,
            },
        }
