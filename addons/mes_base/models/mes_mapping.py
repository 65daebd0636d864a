from odoo import api, fields, models
from odoo.exceptions import ValidationError

MAPPING_FIELDS = {
    "product": "product_id",
    "workcenter": "workcenter_id",
    "uom": "uom_id",
    "scrap_reason": "scrap_tag_id",
    "downtime_reason": "loss_id",
    "operator": "employee_id",
}


class MesMapping(models.Model):
    """One MES code and the Odoo record it stands for, per backend."""

    _name = "mes.mapping"
    _description = "MES code mapping"
    _order = "backend_id, mapping_type, mes_code"
    _rec_name = "mes_code"
    _check_company_auto = True

    backend_id = fields.Many2one("mes.backend", required=True, index=True, ondelete="cascade")
    company_id = fields.Many2one(related="backend_id.company_id", store=True)
    mapping_type = fields.Selection(
        [
            ("product", "Product"),
            ("workcenter", "Resource / work center"),
            ("uom", "Unit of measure"),
            ("scrap_reason", "Scrap reason"),
            ("downtime_reason", "Downtime reason"),
            ("operator", "Operator"),
        ],
        "Type",
        required=True,
        index=True,
    )
    mes_code = fields.Char("MES code", required=True, index=True)
    product_id = fields.Many2one("product.product", ondelete="cascade", check_company=True)
    workcenter_id = fields.Many2one(
        "mrp.workcenter", "Work center", ondelete="cascade", check_company=True
    )
    uom_id = fields.Many2one("uom.uom", "Unit", ondelete="cascade")
    scrap_tag_id = fields.Many2one("stock.scrap.reason.tag", "Scrap reason", ondelete="cascade")
    loss_id = fields.Many2one(
        "mrp.workcenter.productivity.loss", "Downtime reason", ondelete="cascade"
    )
    employee_id = fields.Many2one("hr.employee", ondelete="cascade", check_company=True)
    active = fields.Boolean(default=True)

    _sql_constraints = [
        (
            "code_uniq",
            "unique(backend_id, mapping_type, mes_code)",
            "This MES code is already mapped for this backend.",
        ),
    ]

    @api.constrains("mapping_type", *MAPPING_FIELDS.values())
    def _check_target(self):
        for mapping in self:
            field = MAPPING_FIELDS[mapping.mapping_type]
            if not mapping[field]:
                raise ValidationError(
                    self.env._(
                        "MES code %(code)s: choose the %(what)s it stands for.",
                        code=mapping.mes_code,
                        what=self._fields[field].string,
                    )
                )

    def _target(self):
        self.ensure_one()
        return self[MAPPING_FIELDS[self.mapping_type]]
