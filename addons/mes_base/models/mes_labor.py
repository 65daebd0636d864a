from odoo import api, fields, models


class MesLabor(models.Model):
    """People's time on an operation, as the MES reported it: who (an employee, from the
    operator's badge or code) and how many minutes, beside the machine time the work
    order's time logs hold. Odoo CE's time logs name a user, not an employee: this is
    where the employee and labor minutes are kept."""

    _name = "mes.labor"
    _description = "Operator labor reported by the MES"
    _order = "date_end desc, id desc"
    _check_company_auto = True

    message_id = fields.Many2one("mes.message", "MES message", readonly=True, index=True)
    backend_id = fields.Many2one("mes.backend", "MES", readonly=True, index=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    production_id = fields.Many2one("mrp.production", readonly=True, index=True)
    workorder_id = fields.Many2one("mrp.workorder", "Operation", readonly=True, index=True)
    workcenter_id = fields.Many2one("mrp.workcenter", readonly=True, index=True)
    operator_code = fields.Char("MES operator", readonly=True)
    employee_id = fields.Many2one("hr.employee", readonly=True, index=True)
    user_id = fields.Many2one("res.users", readonly=True)
    minutes = fields.Float(readonly=True)
    hours = fields.Float(compute="_compute_hours", store=True)
    date_end = fields.Datetime("Ended", readonly=True)

    @api.depends("minutes")
    def _compute_hours(self):
        for labor in self:
            labor.hours = labor.minutes / 60.0

    @api.model
    def _record(self, processor, message, workorder, operators, ended):
        """One line per operator of an operation report; the employees they are."""
        vals_list = []
        for index, item in enumerate(operators):
            employee = processor._operator(
                message, item["operator"], f"data.operators[{index}].operator"
            )
            vals_list.append(
                {
                    "message_id": message.id,
                    "backend_id": message.backend_id.id,
                    "company_id": workorder.company_id.id,
                    "production_id": workorder.production_id.id,
                    "workorder_id": workorder.id,
                    "workcenter_id": workorder.workcenter_id.id,
                    "operator_code": item["operator"],
                    "employee_id": employee.id,
                    "user_id": employee.sudo().user_id.id or False,
                    "minutes": item["minutes"],
                    "date_end": ended,
                }
            )
        return self.create(vals_list)
