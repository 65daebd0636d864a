from odoo import api, fields, models


class MesBackendKeyWizard(models.TransientModel):
    """Shows a new inbound key once.

    The key is not a column: it is read from the context of the action that opened the
    dialog, i.e. it exists in clear only in that one answer to the manager who made it.
    Nothing of it is ever written to the database.
    """

    _name = "mes.backend.key.wizard"
    _description = "New inbound API key of an MES backend"

    backend_id = fields.Many2one("mes.backend", required=True, readonly=True)
    key = fields.Char(compute="_compute_key")
    secret = fields.Char("Signing secret", compute="_compute_key")
    intake_url = fields.Char(related="backend_id.intake_url")

    @api.depends_context("mes_new_inbound_key", "mes_new_signing_secret")
    def _compute_key(self):
        self.key = self.env.context.get("mes_new_inbound_key") or False
        self.secret = self.env.context.get("mes_new_signing_secret") or False
