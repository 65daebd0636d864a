from odoo import fields, models


class MesDashboard(models.AbstractModel):
    _inherit = "mes.dashboard"

    def _scope_fields(self):
        return {
            **super()._scope_fields(),
            "qc.inspection": ("company_id", "mes_message_id.backend_id"),
            "mes.quality.hold": ("company_id", "backend_id"),
        }

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
                self.env._("MES quality results failed, %s", self._period_label().lower()),
                [
                    ("mes_message_id", "!=", False),
                    ("state", "=", "failed"),
                    ("date", ">=", fields.Datetime.to_string(self._period()[0][0])),
                ],
                level="warning",
                model="qc.inspection",
            )
        )
        return sections
