import json

from odoo import fields, models

from odoo.addons.queue_job.exception import RetryableJobError

from mes_connector.exceptions import MesPermanentError, MesTransientError


class MesMessage(models.Model):
    _inherit = "mes.message"

    message_type = fields.Selection(
        selection_add=[("resource_status", "Resource status")],
        ondelete={"resource_status": "cascade"},
    )

    def _send_resource_status(self):
        """Deliver 'work center blocked / available' to the MES (queue job of _send)."""
        earlier = self.search(
            [
                ("message_type", "=", "resource_status"),
                ("workcenter_id", "=", self.workcenter_id.id),
                ("direction", "=", "outbound"),
                ("id", "<", self.id),
                ("state", "in", ("pending", "failed")),
            ],
            limit=1,
        )
        if earlier:
            # The MES keeps the last status it got: an earlier one must not arrive after.
            raise RetryableJobError(
                f"an earlier status of {self.workcenter_id.display_name} is not delivered yet",
                seconds=10,
                ignore_retry=True,
            )
        body = json.loads(self.payload)
        details = {key: body[key] for key in ("reason", "since", "reference") if body.get(key)}
        try:
            self.backend_id._get_client().send_resource_status(
                body["resource"], body["status"], self.external_id, **details
            )
        except MesTransientError as err:
            raise RetryableJobError(str(err), seconds=err.retry_after) from err
        except MesPermanentError as err:
            return self._set_refused(err)
        self.write({"state": "acknowledged", "processed_at": fields.Datetime.now()})
        return f"{body['resource']} {body['status']}"
