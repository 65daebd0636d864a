import logging
from datetime import timedelta

from markupsafe import Markup

from odoo import api, fields, models

from .mes_message import ERROR_STATES, OPEN_STATES

_logger = logging.getLogger(__name__)

SEVERITIES = [("warning", "Warning"), ("error", "Error"), ("critical", "Critical")]
SEVERITY_RANK = {"warning": 1, "error": 2, "critical": 3, "never": 99}
# Error codes that are not plain errors. Critical: the shop floor does not have the
# order, or Odoo itself failed. Warning: the MES said something twice or late.
CRITICAL_CODES = ("job_failed", "internal_error", "mes_refused", "order_closed")
WARNING_CODES = ("downtime_duplicate", "downtime_closed")


def severity_of(code):
    code = code or ""
    if code in CRITICAL_CODES or code.startswith("mes_http_"):
        return "critical"
    if code in WARNING_CODES:
        return "warning"
    return "error"


class MesErrorCause(models.Model):
    """One cause of MES errors (code and value at fault) while messages suffer from it.

    Opened when a message fails with a cause that has no open record, with an activity
    for the backend's responsible people if the cause is severe enough; cleared, and
    its activities done, when none of its messages is open any more. Kept afterwards
    as the history of what went wrong and for how long.
    """

    _name = "mes.error.cause"
    _description = "MES error cause"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "state desc, last_seen desc, id desc"

    name = fields.Char("Cause", required=True, readonly=True, index=True)
    backend_id = fields.Many2one(
        "mes.backend", "MES", required=True, readonly=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="backend_id.company_id", store=True, index=True)
    error_code = fields.Char(readonly=True)
    cause_code = fields.Char(readonly=True, index=True)
    cause_value = fields.Char("Value at fault", readonly=True)
    severity = fields.Selection(SEVERITIES, required=True, readonly=True, default="error")
    state = fields.Selection(
        [("open", "Open"), ("cleared", "Cleared")],
        default="open",
        required=True,
        readonly=True,
        index=True,
        tracking=True,
    )
    first_seen = fields.Datetime(readonly=True)
    last_seen = fields.Datetime(readonly=True)
    cleared_at = fields.Datetime(readonly=True)
    example_text = fields.Text("Error", readonly=True)
    message_ids_count = fields.Integer("Open messages", compute="_compute_open_count")

    def init(self):
        # One open record per cause and backend.
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS mes_error_cause_open_unique_idx
                ON mes_error_cause (backend_id, name) WHERE state = 'open'
            """
        )

    def _compute_open_count(self):
        counts = dict(
            self.env["mes.message"]._read_group(
                [("error_cause_id", "in", self.ids), ("state", "in", OPEN_STATES)],
                ["error_cause_id"],
                ["__count"],
            )
        )
        for cause in self:
            cause.message_ids_count = counts.get(cause, 0)

    def action_view_messages(self):
        self.ensure_one()
        self.check_access("read")
        return {
            "type": "ir.actions.act_window",
            "name": self.name,
            "res_model": "mes.message",
            "views": [[False, "list"], [False, "form"]],
            "domain": [("error_cause_id", "=", self.id)],
            "context": {"search_default_open": 1},
        }

    def action_retry_messages(self):
        """After the fix: retry every message of the cause still in error."""
        self.ensure_one()
        self.check_access("read")
        messages = self.env["mes.message"].search(
            [("error_cause_id", "=", self.id), ("state", "in", ERROR_STATES)]
        )
        return messages.action_retry()

    @api.model
    def _trigger_sync(self):
        """Ask for a sync soon, unless one is asked for already (a burst of errors -> one run)."""
        cron = self.env.ref("mes_base.ir_cron_mes_error_causes", raise_if_not_found=False)
        if not cron:
            return
        now = fields.Datetime.now()
        triggers = self.env["ir.cron.trigger"].sudo()
        if not triggers.search_count([("cron_id", "=", cron.id), ("call_at", ">=", now)], limit=1):
            cron.sudo()._trigger(now + timedelta(seconds=20))

    @api.model
    def _cron_sync(self):
        """Open causes for new errors (with their activities), clear the fixed ones."""
        causes = self.sudo()
        messages = causes.env["mes.message"]
        messages.flush_model()
        causes.flush_model()
        self.env.cr.execute(
            """
            SELECT m.id, m.backend_id, COALESCE(m.error_cause, m.error_code, 'unknown'),
                   m.error_code, m.cause_code, m.cause_value, m.create_date, m.error_text
              FROM mes_message m
              LEFT JOIN mes_error_cause c ON c.id = m.error_cause_id
             WHERE m.state IN %s
               AND (c.id IS NULL OR c.state != 'open'
                    OR c.name != COALESCE(m.error_cause, m.error_code, 'unknown'))
             ORDER BY m.id
            """,
            (ERROR_STATES,),
        )
        groups = {}
        for row in self.env.cr.fetchall():
            message_id, backend_id, cause, code, cause_code, value, created, text = row
            group = groups.setdefault(
                (backend_id, cause),
                {
                    "ids": [],
                    "code": code,
                    "cause_code": cause_code,
                    "value": value,
                    "first": created,
                    "last": created,
                    "text": text,
                },
            )
            group["ids"].append(message_id)
            group["last"] = max(group["last"], created)
        for (backend_id, name), group in groups.items():
            cause = causes.search(
                [("backend_id", "=", backend_id), ("name", "=", name), ("state", "=", "open")]
            )
            if cause:
                cause.last_seen = max(cause.last_seen, group["last"])
            else:
                cause = causes.create(
                    {
                        "name": name,
                        "backend_id": backend_id,
                        "error_code": group["code"],
                        "cause_code": group["cause_code"],
                        "cause_value": group["value"],
                        "severity": severity_of(group["code"]),
                        "first_seen": group["first"],
                        "last_seen": group["last"],
                        "example_text": group["text"],
                    }
                )
                cause._notify()
            self.env.cr.execute(
                "UPDATE mes_message SET error_cause_id = %s WHERE id IN %s",
                (cause.id, tuple(group["ids"])),
            )
        messages.invalidate_model(["error_cause_id"])
        self.env.cr.execute(
            """
            SELECT c.id FROM mes_error_cause c
             WHERE c.state = 'open'
               AND NOT EXISTS (SELECT 1 FROM mes_message m
                                WHERE m.error_cause_id = c.id AND m.state IN %s)
            """,
            (OPEN_STATES,),
        )
        cleared = causes.browse([row[0] for row in self.env.cr.fetchall()])
        cleared._clear()
        return len(groups), len(cleared)

    def _responsible_users(self):
        self.ensure_one()
        return self.backend_id._responsible_users(self.company_id)

    def _notify(self):
        """One activity per responsible user, if the cause is severe enough for the backend."""
        activity_type = self.env.ref("mail.mail_activity_data_todo")
        for cause in self:
            threshold = SEVERITY_RANK[cause.backend_id.notify_severity]
            if SEVERITY_RANK[cause.severity] < threshold:
                continue
            for user in cause._responsible_users():
                cause.activity_schedule(
                    activity_type_id=activity_type.id,
                    summary=self.env._(
                        "MES %(severity)s: %(cause)s", severity=cause.severity, cause=cause.name
                    ),
                    # What the MES wrote is text, never markup.
                    note=Markup("<p>%s</p>") % (cause.example_text or ""),
                    user_id=user.id,
                )

    def _clear(self):
        now = fields.Datetime.now()
        for cause in self:
            cause.write({"state": "cleared", "cleared_at": now})
            cause.activity_ids.action_feedback(
                feedback=self.env._("Cleared: its messages are posted or cancelled.")
            )
