from odoo import api, fields, models

from .mrp_production import APPLYING_MES_REPORT


class MrpWorkorder(models.Model):
    _inherit = "mrp.workorder"

    mes_reject_qty = fields.Float(
        "Rejected (MES)",
        digits="Product Unit of Measure",
        readonly=True,
        copy=False,
        help="Quantity the MES reported as rejected at this operation.",
    )

    # Odoo refuses to start or finish a work order while its work center is blocked (a
    # downtime not ended yet, often another order's). The MES is the system of record for
    # execution: what it reports was done is posted whatever Odoo's planning state.
    working_state = fields.Selection(
        related=None,
        compute="_compute_working_state",
        selection=[("normal", "Normal"), ("blocked", "Blocked"), ("done", "In Progress")],
    )

    @api.depends("workcenter_id.working_state")
    @api.depends_context("mes_report")
    def _compute_working_state(self):
        applying = self.env.context.get("mes_report") == APPLYING_MES_REPORT
        for workorder in self:
            state = workorder.workcenter_id.working_state
            workorder.working_state = "normal" if applying and state == "blocked" else state

    def _should_start_timer(self):
        # MES reports carry their own times: the time logs are written from them, not
        # from the moment Odoo processes the message.
        return not self.env.context.get("mes_no_timer") and super()._should_start_timer()
