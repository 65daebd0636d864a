from odoo import Command
from odoo.tests.common import TransactionCase

from mes_connector.simulator import SimulatorServer, Store

MES_KEY = "test-odoo-to-mes-key"
INBOUND_KEY = "test-mes-to-odoo-key-0123456789"


class MesCase(TransactionCase):
    """A plant with one MES backend, a lot-tracked component and a two-step routing."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True))
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
            "occurred_at": "2026-11-20T08:30:00+01:00",
            "data": {
                "quantity": production.product_qty if quantity is None else quantity,
                "uom": uom,
                **data,
            },
        }
