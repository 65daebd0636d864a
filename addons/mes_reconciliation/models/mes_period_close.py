from datetime import timedelta

from dateutil.relativedelta import relativedelta
from markupsafe import Markup, escape

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from odoo.addons.mes_base.models.mes_message import ERROR_STATES

from .mes_reconciliation import company_tz, utc_start

USER_FIELDS = {"company_id", "date_from", "date_to"}


class MesPeriodClose(models.Model):
    """Month-end checklist of the MES interface for one company and period.

    Closing needs: no MES message in error, nothing received left unposted, every order
    finished in the period reconciled (no pending), and every variance above tolerance or
    posting without MES report explained.
    """

    _name = "mes.period.close"
    _description = "MES month-end checklist"
    _inherit = ["mail.thread"]
    _order = "date_from desc, company_id"

    name = fields.Char(compute="_compute_name", store=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    date_from = fields.Date(
        "From",
        required=True,
        default=lambda self: self._default_date_from(),
        help="A new month-end proposes last month, the one usually closed: change both "
        "dates for another period.",
    )
    date_to = fields.Date(
        "To",
        required=True,
        default=lambda self: self._default_date_to(),
        help="A new month-end proposes last month, the one usually closed.",
    )
    state = fields.Selection(
        [("open", "Open"), ("closed", "Closed")], default="open", required=True, tracking=True
    )
    check_ids = fields.One2many("mes.period.close.check", "close_id", "Checks", readonly=True)
    checked_at = fields.Datetime("Checked at", readonly=True)
    all_ok = fields.Boolean("Ready to close", compute="_compute_all_ok", store=True)
    closed_by_id = fields.Many2one("res.users", "Closed by", readonly=True)
    closed_at = fields.Datetime(readonly=True)
    reconciliation_count = fields.Integer(compute="_compute_reconciliation_count")

    _sql_constraints = [
        (
            "period_unique",
            "unique(company_id, date_from, date_to)",
            "There is already a checklist for this company and period.",
        ),
        ("dates", "check(date_from <= date_to)", "The period ends before it starts."),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.su:
            for vals in vals_list:
                # A checklist starts open and unchecked: its state, checks and closer are
                # set by its buttons only.
                forged = {k for k, v in vals.items() if k not in USER_FIELDS and v}
                if forged - {"state"} or vals.get("state", "open") != "open":
                    raise AccessError(
                        self.env._(
                            "A month-end checklist is created open, with its company and "
                            "period only; %s are set by its buttons.",
                            ", ".join(sorted(forged)),
                        )
                    )
        return super().create(vals_list)

    def write(self, vals):
        if not self.env.su:
            if set(vals) - USER_FIELDS:
                raise AccessError(
                    self.env._("A month-end checklist changes only through its buttons.")
                )
            if self.filtered(lambda c: c.state == "closed"):
                raise UserError(self.env._("A closed period cannot be changed; reopen it first."))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_only_open(self):
        if self.filtered(lambda c: c.state == "closed"):
            raise UserError(self.env._("A closed period cannot be deleted."))

    @api.model
    def _default_date_from(self):
        return fields.Date.today().replace(day=1) - relativedelta(months=1)

    @api.model
    def _default_date_to(self):
        return fields.Date.today().replace(day=1) - timedelta(days=1)

    @api.depends("company_id", "date_from", "date_to")
    def _compute_name(self):
        for close in self:
            close.name = f"{close.company_id.name}: {close.date_from} - {close.date_to}"

    @api.depends("check_ids.ok", "checked_at")
    def _compute_all_ok(self):
        for close in self:
            close.all_ok = bool(close.checked_at and close.check_ids) and all(
                close.check_ids.mapped("ok")
            )

    def _period_domain(self):
        return [
            ("company_id", "=", self.company_id.id),
            ("date", ">=", fields.Date.to_string(self.date_from)),
            ("date", "<=", fields.Date.to_string(self.date_to)),
        ]

    def _compute_reconciliation_count(self):
        for close in self:
            close.reconciliation_count = self.env["mes.reconciliation"].search_count(
                close._period_domain()
            )

    def _utc_bounds(self):
        """The period's first and first-after-last local days, as naive UTC datetimes."""
        tz = company_tz(self.company_id, self.env.user)
        return (
            utc_start(self.date_from, tz),
            utc_start(self.date_to + timedelta(days=1), tz),
        )

    def _productions(self):
        """Orders of the company with an MES part, finished or started in the period."""
        start, end = self._utc_bounds()
        productions = self.env["mrp.production"].search(
            [
                ("company_id", "=", self.company_id.id),
                "|",
                "&",
                ("state", "=", "done"),
                "&",
                ("date_finished", ">=", start),
                ("date_finished", "<", end),
                "&",
                ("state", "not in", ("done", "cancel")),
                "&",
                ("date_start", ">=", start),
                ("date_start", "<", end),
            ]
        )
        return productions.filtered(
            lambda p: (
                p.mes_state not in (False, "not_sent")
                or self.env["mes.message"].search_count(
                    [("production_id", "=", p.id), ("direction", "=", "inbound")], limit=1
                )
            )
        )

    def action_run_checks(self):
        for close in self:
            if close.state == "closed":
                raise UserError(self.env._("%s is closed.", close.name))
            self.env["mes.reconciliation"].sudo()._refresh_productions(
                close.with_company(close.company_id)._productions()
            )
            close._write_checks()
            close._log_checks(self.env._("Checks run by %s", self.env.user.name))
        return True

    def _log_checks(self, title):
        """A note of what the checks found, in the period's chatter."""
        items = "".join(
            f"<li>{'✔' if check.ok else '✘'} {escape(check.name)}"
            f"{'' if check.ok else f' ({check.count})'}</li>"
            for check in self.check_ids
        )
        self.sudo().message_post(
            body=Markup(f"<p>{escape(title)}:</p><ul>{items}</ul>"),
            author_id=self.env.user.partner_id.id,
        )

    def _checks(self):
        """(code, label, model, domain) of each check: it passes when the domain finds nothing."""
        end = fields.Datetime.to_string(self._utc_bounds()[1])
        company = [("company_id", "=", self.company_id.id)]
        period = self._period_domain()
        return [
            (
                "open_errors",
                self.env._("No MES message in error"),
                "mes.message",
                [*company, ("state", "in", ERROR_STATES), ("create_date", "<", end)],
            ),
            (
                "unposted",
                self.env._("Everything the MES reported is posted"),
                "mes.message",
                [
                    *company,
                    ("direction", "=", "inbound"),
                    ("state", "in", ("received", "waiting")),
                    ("create_date", "<", end),
                ],
            ),
            (
                "exports",
                self.env._("Every order export delivered"),
                "mes.message",
                [
                    *company,
                    ("direction", "=", "outbound"),
                    ("state", "in", ("pending", "failed", "rejected")),
                    ("create_date", "<", end),
                ],
            ),
            (
                "pending",
                self.env._("Every finished order reconciled"),
                "mes.reconciliation",
                [*period, ("production_state", "=", "done"), ("status", "=", "pending")],
            ),
            (
                "unexplained",
                self.env._("Variances above tolerance and manual postings explained"),
                "mes.reconciliation",
                [*period, ("needs_explanation", "=", True)],
            ),
        ]

    def _write_checks(self):
        """Checks are written by this method only (users read them)."""
        close = self.sudo()
        close.check_ids.unlink()
        values = []
        for sequence, (code, label, model, domain) in enumerate(self._checks()):
            count = self.env[model].sudo().search_count(domain)
            values.append(
                {
                    "close_id": close.id,
                    "sequence": sequence,
                    "code": code,
                    "name": label,
                    "res_model": model,
                    "domain": repr(domain),
                    "count": count,
                    "ok": not count,
                }
            )
        close.env["mes.period.close.check"].create(values)
        close.checked_at = fields.Datetime.now()

    def action_close(self):
        for close in self:
            close.action_run_checks()
            failed = close.check_ids.filtered(lambda c: not c.ok)
            if failed:
                # Kept (not an error that undoes everything): the period's chatter says
                # who tried and why it stays open; the user reads it at once.
                reason = self.env._(
                    "%(period)s cannot be closed yet: %(checks)s",
                    period=close.name,
                    checks="; ".join(f"{c.name} ({c.count})" for c in failed),
                )
                close._log_checks(self.env._("Close refused (asked by %s)", self.env.user.name))
                return {
                    "type": "ir.actions.client",
                    "tag": "display_notification",
                    "params": {
                        "type": "danger",
                        "sticky": True,
                        "title": self.env._("Not closed"),
                        "message": reason,
                        "next": {"type": "ir.actions.client", "tag": "soft_reload"},
                    },
                }
            close.sudo().write(
                {
                    "state": "closed",
                    "closed_by_id": self.env.uid,
                    "closed_at": fields.Datetime.now(),
                }
            )
        return True

    def action_reopen(self):
        if not self.env.su and not self.env.user.has_group("mes_base.group_mes_manager"):
            raise AccessError(self.env._("Only MES managers may reopen a closed period."))
        for close in self:
            close.sudo().write({"state": "open", "closed_by_id": False, "closed_at": False})
            close.message_post(body=self.env._("Reopened by %s.", self.env.user.name))
        return True

    def action_view_reconciliations(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.name,
            "res_model": "mes.reconciliation",
            "views": [[False, "list"], [False, "pivot"], [False, "graph"], [False, "form"]],
            "domain": self._period_domain(),
        }
