from odoo import fields, models


class MaintenanceEquipment(models.Model):
    _inherit = "maintenance.equipment"

    workcenter_id = fields.Many2one(
        "mrp.workcenter",
        "Work center",
        index="btree_not_null",
        check_company=True,
        help="The work center this equipment is part of: MES breakdowns of the work center "
        "become maintenance requests on it, and its maintenance blocks the work center.",
    )
