from odoo import api, fields, models

from odoo.addons.mes_base.models.mes_event_processor import plant_time


class MrpWorkcenterProductivity(models.Model):
    _inherit = "mrp.workcenter.productivity"

    mes_breakdown = fields.Boolean("MES breakdown", readonly=True, index=True)
    maintenance_request_id = fields.Many2one(
        "maintenance.request", "Maintenance request", readonly=True, index="btree_not_null"
    )

    def _mes_breakdown_minutes(self, now):
        return ((self.date_end or now) - self.date_start).total_seconds() / 60.0

    def _mes_sync_maintenance(self, ongoing=False):
        """One corrective request per breakdown longer than its work center's threshold,
        kept up to date while it lasts and closed when it ends.

        A breakdown still going on gets its request from the scheduled check
        (``ongoing``), not when its start is processed: a start read late (after an
        outage) says nothing yet of how long the breakdown lasted.
        """
        now = fields.Datetime.now()
        for log in self.filtered("mes_breakdown"):
            request = log.maintenance_request_id
            over = log._mes_breakdown_minutes(now) > log.workcenter_id.mes_breakdown_threshold
            if log.date_end and request and not over:
                # Its end came late: the breakdown was shorter than the threshold after all.
                request.message_post(
                    body=self.env._(
                        "The MES reported the end late: %(minutes).0f minutes, not longer than "
                        "the threshold of %(wc)s. Archived.",
                        minutes=log._mes_breakdown_minutes(now),
                        wc=log.workcenter_id.display_name,
                    )
                )
                request.archive = True
                log.maintenance_request_id = False
                continue
            if not request:
                if not over or not (log.date_end or ongoing):
                    continue
                request = log.maintenance_request_id = self.env["maintenance.request"].create(
                    log._mes_request_vals()
                )
            request._mes_update_from(log)

    def _mes_request_vals(self):
        self.ensure_one()
        workcenter = self.workcenter_id
        equipment = workcenter.equipment_ids.sorted("id")[:1]
        reason = self.loss_id.name
        return {
            "name": self.env._(
                "Breakdown of %(what)s: %(reason)s",
                what=(equipment or workcenter).display_name,
                reason=reason,
            ),
            "equipment_id": equipment.id or False,
            "maintenance_type": "corrective",
            "request_date": self.date_start.date(),
            "schedule_date": self.date_start,
            "company_id": workcenter.company_id.id or self.company_id.id,
            "description": self.env._(
                "Reported by the MES: downtime %(ref)s of %(wc)s since %(start)s, "
                "reason %(code)s (%(reason)s). %(comment)s",
                ref=self.mes_downtime_ref,
                wc=workcenter.display_name,
                start=plant_time(
                    self.env, self.date_start, workcenter.company_id or self.company_id
                ),
                code=self.mes_reason_code,
                reason=reason,
                comment=self.description or "",
            ),
            "mes_productivity_id": self.id,
            "mes_workcenter_id": workcenter.id,
            "mes_downtime_ref": self.mes_downtime_ref,
            "mes_reason": self.mes_reason_code,
            "mes_breakdown_start": self.date_start,
        }

    @api.model
    def _cron_mes_breakdowns(self):
        """Breakdowns still going on: open their request once over the threshold, update it."""
        open_logs = self.search([("mes_breakdown", "=", True), ("date_end", "=", False)])
        open_logs._mes_sync_maintenance(ongoing=True)
        return len(open_logs)
