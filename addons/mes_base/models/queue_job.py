import logging

from psycopg2 import errors as pg_errors

from odoo import models

_logger = logging.getLogger(__name__)


class QueueJob(models.Model):
    _inherit = "queue.job"

    def write(self, vals):
        res = super().write(vals)
        if {"state", "result", "retry", "eta"} & set(vals):
            mes_jobs = self.filtered(lambda j: j.model_name == "mes.message")
            if mes_jobs:
                mes_jobs._mes_sync_messages()
        return res

    def _mes_sync_messages(self):
        """Show a job's retries and failure on the messages it works for.

        queue_job records a postponed or failed attempt in its own transaction while
        the job's transaction may still hold the message's row lock: never wait for
        that lock, the job record keeps the same information anyway.
        """
        messages = self.env["mes.message"].sudo().search([("job_uuid", "in", self.mapped("uuid"))])
        if not messages:
            return
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(
                    "SELECT id FROM mes_message WHERE id IN %s FOR UPDATE NOWAIT",
                    (tuple(messages.ids),),
                )
        except pg_errors.LockNotAvailable:
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
                        "error_cause": f"job_failed: {job.exc_name or '?'}",
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
                        "error_text": self.env._(
                            "Not delivered yet, next try at %(eta)s (UTC): %(why)s",
                            eta=job.eta,
                            why=job.result,
                        ),
                    }
                )
            elif job.state == "done":
                message.write({"attempt_count": job.retry, "next_attempt_at": False})

    def related_action_mes_message(self):
        """From a job to the MES message it works for."""
        self.ensure_one()
        message = self.env["mes.message"].search([("job_uuid", "=", self.uuid)], limit=1)
        if not message:
            message = self.records.exists()
        return {
            "type": "ir.actions.act_window",
            "res_model": "mes.message",
            "res_id": message.id,
            "view_mode": "form",
            "name": message.display_name,
        }
