from odoo import fields, models


class MesBackendKeyWizard(models.TransientModel):
    _name = "mes.backend.key.wizard"
    _description = "New inbound API key of an MES backend"

    backend_id = fields.Many2one("mes.backend", required=True, readonly=True)
    key = fields.Char(readonly=True)
    intake_url = fields.Char(related="backend_id.intake_url")

    def action_done(self):
        # The key lives only until it is copied: nothing of it stays in the database.
        self.unlink()
        return {"type": "ir.actions.act_window_close"}
