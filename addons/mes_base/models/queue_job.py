import logging

from odoo import models

from ..locking import try_lock
from .mes_message import bounded_cause, cause_name

_logger = logging.getLogger(__name__)


class QueueJob(models.Model):
    _inherit = "queue.job"

    def write(self, vals):
        res = super().write(vals)
        if {"state", "result", "retry", "eta"} & set(vals):
            mes_jobs = self.filtered(lambda j: j.model_name == "mes.message")
            lanes = mes_jobs.filtered(lambda j: j.method_name == "_run_lane")
            if lanes and vals.get("state") == "failed":
                lanes._mes_lane_failed()
            if mes_jobs - lanes:
                (mes_jobs - lanes)._mes_sync_messages()
        return res

    def _mes_lane_failed(self):
        """A lane's job failed outside the handling of each message (a defect, a lost
        database): the message it stopped at shows it, in error, for a person to retry."""
        messages = self.env["mes.message"].sudo().with_context(tracking_disable=True)
        for job in self:
            head = messages._lane_head(job.args[0])
            if head.state not in ("received", "waiting"):
                continue
            if not try_lock(head):
                _logger.info("MES message %s is locked; its lane's failure not copied", head.id)
                continue
            head.write(
                {
                    "state": "error",
                    "next_attempt_at": False,
                    "error_code": "job_failed",
                    "cause_code": "job_failed",
                    "cause_value": job.exc_name or "?",
                    "error_cause": cause_name(
                        "job_failed", "job_failed", bounded_cause(job.exc_name or "?")
                    ),
                    "error_text": job.exc_message or job.exc_name,
                }
            )

    def _mes_sync_messages(self):
        """Show a job's retries and failure on the messages it works for.

        queue_job records a postponed or failed attempt in its own transaction while
        the job's transaction may still hold the message's row lock: never wait for
        that lock, the job record keeps the same information anyway.
        """
        messages = self.env["mes.message"].sudo().search([("job_uuid", "in", self.mapped("uuid"))])
        if not messages:
            return
        if not try_lock(messages):
            _logger.info("MES messages %s are locked; job state not copied", messages.ids)
            return
        jobs = {job.uuid: job for job in self}
        for message in messages:
            job = jobs[message.job_uuid]
            if job.state == "failed" and message.state in ("pending", "received", "waiting"):
                message.write(
                    {
                        "state": "failed",
                        "attempt_count": job.retry,
                        "next_attempt_at": False,
                        "error_code": "job_failed",
                        "cause_code": "job_failed",
                        "cause_value": job.exc_name or "?",
                        "error_cause": cause_name(
                            "job_failed", "job_failed", bounded_cause(job.exc_name or "?")
                        ),
                        "error_text": job.exc_message or job.exc_name,
                    }
                )
                if message.direction == "outbound" and message.production_id:
                    message.production_id.mes_state = "failed"
            elif job.state == "pending" and job.result and job.eta:
                message.write(
                    {
                        "attempt_count": job.retry,
                        "next_attempt_at": job.eta,
                        "error_code": "retrying",
                        # When it is tried next is next_attempt_at, shown in each
                        # reader's time zone.
                        "error_text": self.env._("Not delivered yet: %s", job.result),
                    }
                )
            elif job.state == "done":
                message.write({"attempt_count": job.retry, "next_attempt_at": False})

    def related_action_mes_message(self):
        """From a job to the MES message it works for."""
        self.ensure_one()
        messages = self.env["mes.message"]
        if self.method_name == "_run_lane":
            # The message the lane is at, else the lane's last one.
            key = self.args[0]
            message = messages._lane_head(key) or messages.search(
                messages._lane_domain(key), order="sequence desc, id desc", limit=1
            )
        else:
            message = messages.search([("job_uuid", "=", self.uuid)], limit=1)
        if not message:
            message = self.records.exists()
        return {
            "type": "ir.actions.act_window",
            "res_model": "mes.message",
            "res_id": message.id,
            "view_mode": "form",
            "name": message.display_name,
        }
