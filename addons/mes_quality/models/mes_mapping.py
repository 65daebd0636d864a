from odoo import api, fields, models

from odoo.addons.mes_base.models.mes_mapping import MAPPING_FIELDS

MAPPING_FIELDS["quality_test"] = "qc_test_id"


class MesMapping(models.Model):
    _inherit = "mes.mapping"

    mapping_type = fields.Selection(
        selection_add=[("quality_test", "Quality characteristic")],
        ondelete={"quality_test": "cascade"},
    )
    qc_test_id = fields.Many2one("qc.test", "Quality test", ondelete="cascade")

    @api.constrains("mapping_type", "qc_test_id")
    def _check_quality_target(self):
        self.filtered(lambda m: m.mapping_type == "quality_test")._check_target()
