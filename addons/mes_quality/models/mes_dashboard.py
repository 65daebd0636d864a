from odoo import models


class MesDashboard(models.AbstractModel):
    _inherit = "mes.dashboard"

    def _warehouse_sections(self):
        sections = super()._warehouse_sections()
        sections[0]["tiles"].append(
            self._tile(
                "quality_holds",
                self.env._("Lots on quality hold"),
                [("state", "=", "held")],
                level="warning",
                model="mes.quality.hold",
            )
        )
        return sections

    def _planner_sections(self):
        sections = super()._planner_sections()
        if not self.env["qc.inspection"].has_access("read"):
            return sections  # planners who are not quality users
        sections[0]["tiles"].append(
            self._tile(
                "failed_inspections",
                self.env._("MES quality results failed (7 days)"),
                [
                    ("mes_message_id", "!=", False),
                    ("state", "=", "failed"),
                    ("date", ">=", self._ago(24 * 7)),
                ],
                level="warning",
                model="qc.inspection",
            )
        )
        return sections
