from odoo import fields, models
from odoo.exceptions import UserError

from .mes_master_data import schedule_master_data_check

# What the MES's equipment master says of a work center (mes.equipment/1).
EQUIPMENT_FIELDS = {
    "code",
    "name",
    "default_capacity",
    "time_efficiency",
    "resource_calendar_id",
    "active",
}


def _hours(value):
    """Hours of the day as HH:MM (24:00 for the end of the day)."""
    minutes = round(value * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class MrpWorkcenter(models.Model):
    _inherit = "mrp.workcenter"

    mes_live = fields.Boolean(
        "Live on the MES",
        default=True,
        help="Phased go-live: orders routed only through work centers that are not live are "
        "not sent to the MES.",
    )

    def _mes_master_code(self):
        self.ensure_one()
        if not self.code:
            raise UserError(
                self.env._(
                    "The MES identifies work centers by their Code, and %s has none. Set it "
                    "on the work center.",
                    self.display_name,
                )
            )
        return self.code

    def _mes_master_document(self, backend):
        workcenter = self.with_context(lang=backend._master_data_lang())
        calendar = workcenter.resource_calendar_id
        return {
            "schema": "mes.equipment/1",
            "code": workcenter._mes_master_code(),
            "name": workcenter.name,
            "capacity": workcenter.default_capacity,
            "time_efficiency": workcenter.time_efficiency,
            "active": workcenter.active,
            "calendar": calendar._mes_calendar_document() if calendar else None,
        }

    def _mes_master_data_needs(self):
        return []

    def write(self, vals):
        res = super().write(vals)
        if EQUIPMENT_FIELDS & set(vals):
            schedule_master_data_check(self, "equipment")
            if "code" in vals:
                # Bills of materials name their work centers by code.
                boms = (
                    self.env["mrp.routing.workcenter"]
                    .with_context(active_test=False)
                    .sudo()
                    .search([("workcenter_id", "in", self.ids)])
                    .bom_id
                )
                schedule_master_data_check(boms, "bom")
        return res

    def unlink(self):
        self.env["mes.master.data"].sudo().search(
            [("kind", "=", "equipment"), ("workcenter_id", "in", self.ids)]
        )._retire()
        return super().unlink()
