from odoo import models

from .mes_master_data import schedule_master_data_check
from .mrp_workcenter import _hours

CALENDAR_FIELDS = {"name", "tz", "attendance_ids", "hours_per_day", "two_weeks_calendar"}


class ResourceCalendar(models.Model):
    _inherit = "resource.calendar"

    def _mes_calendar_document(self):
        """The working time the MES plans a work center with: its attendances (lunch
        breaks are not working time), per week of a two-week calendar."""
        self.ensure_one()
        attendances = self.attendance_ids.filtered(
            lambda a: a.day_period != "lunch" and not a.display_type and not a.resource_id
        ).sorted(lambda a: (a.week_type or "", int(a.dayofweek), a.hour_from))
        lines = []
        for attendance in attendances:
            line = {
                "weekday": int(attendance.dayofweek),
                "from": _hours(attendance.hour_from),
                "to": _hours(attendance.hour_to),
            }
            if self.two_weeks_calendar:
                line["week"] = int(attendance.week_type or 0) + 1
            lines.append(line)
        return {
            "name": self.name,
            "timezone": self.tz,
            "hours_per_day": self.hours_per_day,
            "attendances": lines,
        }

    def _mes_workcenters(self):
        return (
            self.env["mrp.workcenter"]
            .with_context(active_test=False)
            .sudo()
            .search([("resource_calendar_id", "in", self.ids)])
        )

    def write(self, vals):
        res = super().write(vals)
        if CALENDAR_FIELDS & set(vals):
            schedule_master_data_check(self._mes_workcenters(), "equipment")
        return res
