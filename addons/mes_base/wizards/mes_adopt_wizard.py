from odoo import fields, models


class MesAdoptWizard(models.TransientModel):
    _name = "mes.adopt.wizard"
    _description = "Adopt an order the MES already runs"

    production_id = fields.Many2one("mrp.production", required=True, readonly=True)
    # Filled in when the planner came from a report naming an MES order Odoo lacks.
    mes_order_id = fields.Char(
        "MES order id",
        required=True,
        default=lambda self: self.env.context.get("mes_adopt_order_id"),
    )

    def action_confirm(self):
        self.production_id.check_access("write")
        self.production_id._mes_adopt(self.mes_order_id.strip())
        return {"type": "ir.actions.act_window_close"}
