from odoo import models


class ResourceCalendarAttendance(models.Model):
    _name = "resource.calendar.attendance"
    _inherit = ["resource.calendar.attendance", "mes.master.data.part"]

    def _mes_master_parents(self):
        return self.calendar_id._mes_workcenters(), "equipment"
