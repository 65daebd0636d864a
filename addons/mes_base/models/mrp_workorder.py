from odoo import fields, models


class MrpWorkorder(models.Model):
    _inherit = "mrp.workorder"

    mes_reject_qty = fields.Float(
        "Rejected (MES)",
        digits="Product Unit of Measure",
        readonly=True,
        copy=False,
        help="Quantity the MES reported as rejected at this operation.",
    )

    def _should_start_timer(self):
        # MES reports carry their own times: the time logs are written from them, not
        # from the moment Odoo processes the message.
        return not self.env.context.get("mes_no_timer") and super()._should_start_timer()
