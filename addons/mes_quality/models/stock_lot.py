from odoo import api, fields, models
from odoo.exceptions import AccessError

from odoo.addons.mes_base.models.mes_master_data import schedule_master_data_check


class StockLot(models.Model):
    _inherit = "stock.lot"

    mes_hold_ids = fields.One2many("mes.quality.hold", "lot_id", "Quality holds")
    mes_on_hold = fields.Boolean(
        "On quality hold",
        compute="_compute_mes_on_hold",
        store=True,
        index=True,
        help="A failed quality result holds the lot: it cannot be consumed until released.",
    )

    @api.depends("mes_hold_ids.state")
    def _compute_mes_on_hold(self):
        for lot in self:
            lot.mes_on_hold = any(hold.state == "held" for hold in lot.mes_hold_ids)

    def _mes_lot_status(self):
        # A lot on quality hold is not to be consumed: the MES is told so.
        return "hold" if self.mes_on_hold else super()._mes_lot_status()

    def _mes_schedule_status(self):
        """The lot's hold changed: the MES holding it gets its new status at commit."""
        schedule_master_data_check(self, "lot")

    def write(self, vals):
        if "mes_on_hold" in vals and not self.env.su:
            # The flag follows the lot's holds; a hold is released by a quality user.
            raise AccessError(
                self.env._("A lot's quality hold is lifted by releasing the hold, not by hand.")
            )
        return super().write(vals)

    def action_view_mes_holds(self):
        self.ensure_one()
        self.env["mes.quality.hold"].check_access("read")
        return {
            "type": "ir.actions.act_window",
            "name": self.display_name,
            "res_model": "mes.quality.hold",
            "views": [[False, "list"], [False, "form"]],
            "domain": [("lot_id", "=", self.id)],
        }
