from odoo import api, fields, models

from .mes_reconciliation import STATUSES


# Quantities are in each line's own unit (hours for time): never added up across lines.
class MesReconciliationLine(models.Model):
    """One thing an order planned, the MES reported and Odoo posted: a component (per lot),
    the output, a by-product, scrap, or the time of a work center.

    planned: the bill of materials for the order's quantity (components, by-products),
    the order's quantity (output), the expected duration (time); it is carried by the line
    without lot. reported: every event of the order the MES sent, posted or not
    (cancelled ones excluded). posted: what Odoo holds as done. Quantities are in the
    product's unit (hours for time), values in the company's currency.
    """

    _name = "mes.reconciliation.line"
    _description = "MES reconciliation line"
    _order = "reconciliation_id, kind_sequence, product_id, lot_name, id"

    reconciliation_id = fields.Many2one(
        "mes.reconciliation", required=True, ondelete="cascade", index=True
    )
    production_id = fields.Many2one(
        related="reconciliation_id.production_id", store=True, index=True
    )
    company_id = fields.Many2one(related="reconciliation_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="reconciliation_id.currency_id")
    backend_id = fields.Many2one(related="reconciliation_id.backend_id", store=True)
    warehouse_id = fields.Many2one(
        related="reconciliation_id.warehouse_id", string="Plant", store=True, index=True
    )
    date = fields.Date(related="reconciliation_id.date", store=True, index=True)
    kind = fields.Selection(
        [
            ("output", "Output"),
            ("byproduct", "By-product"),
            ("component", "Component"),
            ("scrap", "Scrap"),
            ("rework", "Rework"),
            ("time", "Work center time"),
            ("labor", "Operator labor"),
        ],
        required=True,
    )
    kind_sequence = fields.Integer()
    product_id = fields.Many2one("product.product", index=True)
    operator_name = fields.Char("Operator", help="Labor lines: the operator whose time it is.")
    mes_code = fields.Char(
        "MES code", help="What the MES called it, when Odoo could not tell which product it is."
    )
    item = fields.Char(
        compute="_compute_item",
        store=True,
        help="What the line is about: the product, the work center (time), or the MES's code.",
    )
    production_state = fields.Selection(
        related="reconciliation_id.production_id.state", string="Order status"
    )
    lot_detail = fields.Boolean(
        "Lot of the line above",
        help="One lot of a lot-tracked product: what was reported and posted of that lot. "
        "The product's own line, above it, carries the planned quantity, the usage variance "
        "and the values.",
    )
    lot_id = fields.Many2one("stock.lot")
    lot_name = fields.Char()
    workcenter_id = fields.Many2one("mrp.workcenter", "Work center", index=True)
    uom_id = fields.Many2one("uom.uom", "Unit")
    planned_qty = fields.Float(
        "Planned",
        digits="Product Unit of Measure",
        aggregator=None,
    )
    reported_qty = fields.Float(
        "MES reported",
        digits="Product Unit of Measure",
        aggregator=None,
    )
    pending_qty = fields.Float(
        "Not yet posted",
        digits="Product Unit of Measure",
        help="Part of the reported quantity whose messages are not processed yet.",
        aggregator=None,
    )
    posted_qty = fields.Float(
        "Odoo posted",
        digits="Product Unit of Measure",
        aggregator=None,
    )
    unmatched_qty = fields.Float(
        "Posted without MES report",
        digits="Product Unit of Measure",
        help="Posted in Odoo with no MES message behind it on an order whose material the MES "
        "owns: a manual change to check.",
        aggregator=None,
    )
    variance_qty = fields.Float(
        "Variance (posted - reported)",
        digits="Product Unit of Measure",
        aggregator=None,
    )
    usage_variance_qty = fields.Float(
        "Usage variance (reported - planned)",
        digits="Product Unit of Measure",
        aggregator=None,
    )
    unit_cost = fields.Float(digits="Product Price", aggregator=None)
    posted_value = fields.Monetary(currency_field="currency_id")
    variance_value = fields.Monetary(currency_field="currency_id")
    usage_variance_value = fields.Monetary(currency_field="currency_id")
    status = fields.Selection(STATUSES, required=True, index=True)
    mes_reported = fields.Boolean(
        "Reported by the MES",
        default=True,
        help="Off for the time of a work center the MES reports no time for: Odoo's own time "
        "logs are shown, not reconciled.",
    )
    unmatched = fields.Boolean(index=True)

    @api.depends("product_id", "workcenter_id", "mes_code")
    def _compute_item(self):
        for line in self:
            line.item = (
                line.product_id.display_name
                or line.workcenter_id.display_name
                or line.mes_code
                or False
            )

    def init(self):
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS mes_reconciliation_line_company_date_idx
                ON mes_reconciliation_line (company_id, date, status)
            """
        )
