from odoo import api, fields, models

from odoo.addons.mes_base.models.mes_event_processor import plant_time


class MaintenanceRequest(models.Model):
    _inherit = "maintenance.request"

    mes_productivity_id = fields.Many2one(
        "mrp.workcenter.productivity",
        "MES downtime",
        readonly=True,
        index="btree_not_null",
        help="The downtime the MES reported: this request was opened for it.",
    )
    mes_workcenter_id = fields.Many2one("mrp.workcenter", "Work center (MES)", readonly=True)
    mes_downtime_ref = fields.Char("MES downtime id", readonly=True)
    mes_reason = fields.Char("MES reason", readonly=True)
    mes_breakdown_start = fields.Datetime("Breakdown start", readonly=True)
    mes_breakdown_end = fields.Datetime("Breakdown end", readonly=True)

    @api.model_create_multi
    def create(self, vals_list):
        requests = super().create(vals_list)
        requests._mes_report_workcenters()
        return requests

    def write(self, vals):
        before = self._mes_workcenters() if {"equipment_id", "archive"} & set(vals) else None
        result = super().write(vals)
        if {"stage_id", "equipment_id", "archive"} & set(vals):
            (self._mes_workcenters() | (before or self.env["mrp.workcenter"]))._mes_report_status()
        return result

    def unlink(self):
        workcenters = self._mes_workcenters()
        result = super().unlink()
        workcenters._mes_report_status()
        return result

    def _mes_workcenters(self):
        return self.equipment_id.workcenter_id

    def _mes_report_workcenters(self):
        self._mes_workcenters()._mes_report_status()

    def _mes_update_from(self, log):
        """Carry the downtime's end and duration; close the request when the MES runs again."""
        self.ensure_one()
        end = log.date_end or fields.Datetime.now()
        vals = {"duration": (end - log.date_start).total_seconds() / 3600.0}
        if log.date_end:
            vals["mes_breakdown_end"] = log.date_end
        self.write(vals)
        if log.date_end and not self.stage_id.done:
            done = self.env["maintenance.stage"].search(
                [("done", "=", True)], order="sequence", limit=1
            )
            if done:
                self.stage_id = done
            # Odoo dates a request closed today; it closed when the MES ran again.
            self.close_date = log.date_end.date()
            self.message_post(
                body=self.env._(
                    "The MES reports %(wc)s running again on %(end)s, after %(hours).2f h.",
                    wc=log.workcenter_id.display_name,
                    end=plant_time(self.env, log.date_end, log.company_id),
                    hours=vals["duration"],
                )
            )
