from odoo import api, fields, models


class MrpWorkcenterProductivity(models.Model):
    _inherit = "mrp.workcenter.productivity"

    mes_backend_id = fields.Many2one("mes.backend", "MES", readonly=True, index=True)
    mes_downtime_ref = fields.Char("MES downtime id", readonly=True, index=True)
    mes_reason_code = fields.Char("MES reason", readonly=True)
    mes_wall_clock = fields.Boolean(
        "Time as the MES reported it",
        readonly=True,
        help="Setup and run time the MES reported for a work order: its duration is the time "
        "between start and end, not the working hours of the work center's calendar in it.",
    )

    _sql_constraints = [
        (
            "mes_downtime_uniq",
            "unique(mes_backend_id, mes_downtime_ref)",
            "This MES downtime is already recorded.",
        ),
    ]

    @api.depends("date_end", "date_start", "mes_wall_clock")
    def _compute_duration(self):
        reported = self.filtered(lambda log: log.mes_wall_clock and log.date_start and log.date_end)
        for log in reported:
            start, end = log.date_start.replace(microsecond=0), log.date_end.replace(microsecond=0)
            log.duration = (end - start).total_seconds() / 60.0
        return super(MrpWorkcenterProductivity, self - reported)._compute_duration()
