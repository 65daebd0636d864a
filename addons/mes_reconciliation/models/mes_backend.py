from odoo import fields, models


class MesBackend(models.Model):
    _inherit = "mes.backend"

    reconcile_tolerance_pct = fields.Float(
        "Reconciliation tolerance (%)",
        default=0.5,
        help="A difference between what the MES reported and what Odoo posted of at most this "
        "share of the quantity is 'within tolerance'; above it, a variance to explain.",
    )
    reconcile_tolerance_value = fields.Monetary(
        "Reconciliation tolerance (value)",
        currency_field="currency_id",
        help="A difference worth at most this much is 'within tolerance' whatever its share.",
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    digest_user_ids = fields.Many2many(
        "res.users",
        "mes_backend_digest_user_rel",
        string="Daily variance digest to",
        domain=[("share", "=", False)],
        help="Finance and planners who get the daily digest of reconciliation variances.",
    )
