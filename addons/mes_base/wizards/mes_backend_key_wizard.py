import hashlib
import hmac

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError


def key_digest(key):
    return hashlib.sha256(key.encode()).hexdigest()


class MesBackendKeyWizard(models.TransientModel):
    """Shows a new inbound key or signing secret once, and puts it in use on request.

    The key is not a column: it is read from the context of the action that opened the
    dialog, i.e. it exists in clear only in that one answer to the manager who made it;
    the wizard keeps its digest, to put in use that key and no other. Until the manager
    says the MES has it (*Use this key*), nothing changes: closing the dialog discards
    it, and the keys in use keep working.
    """

    _name = "mes.backend.key.wizard"
    _description = "New inbound API key of an MES backend"

    backend_id = fields.Many2one("mes.backend", required=True, readonly=True)
    kind = fields.Selection(
        [("inbound_key", "Inbound API key"), ("signing_secret", "Signing secret")],
        default="inbound_key",
        required=True,
        readonly=True,
    )
    digest = fields.Char(readonly=True)
    used = fields.Boolean(readonly=True)
    key = fields.Char(compute="_compute_key")
    secret = fields.Char("Signing secret", compute="_compute_key")
    intake_url = fields.Char(related="backend_id.intake_url")

    @api.model_create_multi
    def create(self, vals_list):
        # What a dialog puts in use is made by Odoo only (see mes.backend._new_secret_dialog):
        # over RPC a manager could otherwise bring a key of his own choosing.
        if not self.env.su and any({"digest", "used", "kind"} & set(vals) for vals in vals_list):
            raise AccessError(self.env._("A key dialog is made by Odoo, with the key it shows."))
        return super().create(vals_list)

    def write(self, vals):
        if not self.env.su:
            raise AccessError(self.env._("A key dialog cannot be changed."))
        return super().write(vals)

    @api.depends_context("mes_new_inbound_key", "mes_new_signing_secret")
    def _compute_key(self):
        self.key = self.env.context.get("mes_new_inbound_key") or False
        self.secret = self.env.context.get("mes_new_signing_secret") or False

    def action_use(self):
        """Put the key (or secret) this dialog shows in use: the one it was made with."""
        self.ensure_one()
        backend = self.backend_id
        backend._check_manager()
        context_key = (
            "mes_new_inbound_key" if self.kind == "inbound_key" else "mes_new_signing_secret"
        )
        value = self.env.context.get(context_key) or ""
        wizard = self.sudo()
        if wizard.used:
            raise UserError(self.env._("This key is in use already."))
        if not wizard.digest or not hmac.compare_digest(key_digest(value), wizard.digest):
            raise UserError(self.env._("This is not the key this dialog made: make a new one."))
        wizard.used = True
        if self.kind == "inbound_key":
            backend._use_inbound_key(value)
        else:
            backend._use_signing_secret(value)
        return {"type": "ir.actions.act_window_close"}
