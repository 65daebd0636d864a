from odoo import fields, models


class MesMessageCancelWizard(models.TransientModel):
    _name = "mes.message.cancel.wizard"
    _description = "Cancel MES messages with a reason"

    message_ids = fields.Many2many("mes.message", required=True)
    reason = fields.Text(required=True)

    def action_confirm(self):
        self.message_ids.action_cancel(self.reason)
        return {"type": "ir.actions.act_window_close"}
