from odoo import fields, models
from odoo.tools.safe_eval import safe_eval


class MesPeriodCloseCheck(models.Model):
    """One point of the month-end checklist, with the list of what makes it fail."""

    _name = "mes.period.close.check"
    _description = "MES month-end check"
    _order = "close_id, sequence, id"

    close_id = fields.Many2one("mes.period.close", required=True, ondelete="cascade", index=True)
    sequence = fields.Integer()
    code = fields.Char(required=True)
    name = fields.Char("Check", required=True)
    count = fields.Integer("Found")
    ok = fields.Boolean("Passed")
    res_model = fields.Char(required=True)
    domain = fields.Char(required=True)

    def action_open(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.name,
            "res_model": self.res_model,
            "views": [[False, "list"], [False, "form"]],
            "domain": safe_eval(self.domain),
        }
