from odoo import models


class MesDashboard(models.AbstractModel):
    _inherit = "mes.dashboard"

    def _scope_fields(self):
        return {**super()._scope_fields(), "maintenance.request": ("company_id", None)}

    def _planner_sections(self):
        sections = super()._planner_sections()
        tiles = [
            self._tile(
                "breakdowns",
                self.env._("Breakdowns going on"),
                [("mes_breakdown", "=", True), ("date_end", "=", False)],
                model="mrp.workcenter.productivity",
            ),
            self._tile(
                "breakdown_requests",
                self.env._("Open requests from MES breakdowns"),
                [
                    ("mes_productivity_id", "!=", False),
                    ("stage_id.done", "=", False),
                    ("archive", "=", False),
                ],
                level="warning",
                model="maintenance.request",
            ),
            self._tile(
                "blocked_workcenters",
                self.env._("Work centers reported blocked to the MES"),
                [("mes_reported_status", "=", "blocked")],
                level="warning",
                model="mrp.workcenter",
            ),
        ]
        sections.insert(
            1,
            {
                "kind": "tiles",
                "key": "maintenance",
                "title": self.env._("Breakdowns and maintenance"),
                "tiles": tiles,
            },
        )
        return sections
