"""Exporter: outbound messages (order revisions, and other addons' types through
``_send_<type>``) delivered to the MES by their queue jobs, one after the other per order.
"""

import json

from odoo import fields, models

from odoo.addons.queue_job.exception import RetryableJobError

from mes_connector.exceptions import (
    MesPermanentError,
    MesTransientError,
)

from ..locking import lock_or_retry
from .mes_master_data import MESSAGE_KIND


# One model, one file per job (intake, importer, exporter) so that each is found by its
# name: kept apart on purpose.
class MesMessage(models.Model):
    _inherit = "mes.message"  # pylint: disable=consider-merging-classes-inherited

    def _send(self):
        """Deliver an outbound message to the MES (queue job)."""
        self.ensure_one()
        if not self.env.su:
            return self.sudo()._send()
        if self.state != "pending":
            return f"nothing to do: message is {self.state}"
        if self.message_type in MESSAGE_KIND:
            return self._send_master_data()
        if self.message_type != "order_export":
            # Other outbound messages (added by other addons): _send_<type>.
            return getattr(self, f"_send_{self.message_type}")()
        production = self.production_id
        if production.state == "done" and self.order_action == "create":
            # Finished in Odoo before the MES took it (closed by hand while the MES was
            # away, or by data loaded with a module): the MES has nothing left to run.
            self.write(
                {
                    "state": "cancelled",
                    "cancel_reason": self.env._(
                        "Not sent: %s was finished in Odoo before the MES took it.",
                        production.name,
                    ),
                    "processed_at": fields.Datetime.now(),
                }
            )
            production.sudo().mes_state = "not_sent"
            return "not sent: the order was finished in Odoo first"
        earlier = self.search(
            [
                ("production_id", "=", self.production_id.id),
                ("direction", "=", "outbound"),
                ("revision", "<", self.revision),
                ("state", "in", ("pending", "failed", "rejected")),
            ],
            order="revision",
            limit=1,
        )
        if self.production_id and earlier:
            # The MES applies revisions in order: never let a later one overtake. A rejected
            # one must be retried or cancelled by a person first.
            raise RetryableJobError(
                self.env._(
                    "revision %(rev)s of %(order)s is not delivered yet (%(state)s)",
                    rev=earlier.revision,
                    order=self.order_ref,
                    state=earlier.state,
                ),
                seconds=10,
                ignore_retry=True,
            )
        self._wait_for_master_data()
        # The order is held while its revision is delivered: cancelling it meanwhile
        # waits for the MES's answer, then sees what the MES got (never withdraws a
        # revision on its way). Not the message: queue_job notes our retries on it.
        lock_or_retry(production)
        client = self.backend_id._get_client()
        try:
            if self.payload_format == "xml":
                ack = client.send_order_xml(self.payload.encode(), self.external_id)
            else:
                ack = client.send_order(json.loads(self.payload), self.external_id)
        except MesTransientError as err:
            raise RetryableJobError(str(err), seconds=err.retry_after) from err
        except MesPermanentError as err:
            self.production_id.sudo().mes_state = "rejected"
            return self._set_refused(err)
        if ack.mes_order_id is None and self.order_action == "cancel":
            # A cancellation the MES took: nothing more will come of the order.
            self.write(
                {
                    "state": "acknowledged",
                    "processed_at": fields.Datetime.now(),
                    "error_code": False,
                    "error_text": False,
                }
            )
            production.sudo().mes_state = "cancelled"
            return "cancellation taken by the MES"
        if ack.mes_order_id is None:
            # Taken for later processing: the MES acknowledges it when it reports on it.
            self.write(
                {
                    "state": "sent",
                    "processed_at": fields.Datetime.now(),
                    "error_code": False,
                    "error_text": False,
                }
            )
            self.production_id.sudo().mes_state = "sent"
            return "taken by the MES, not acknowledged yet"
        self.write(
            {
                "state": "acknowledged",
                "mes_order_id": ack.mes_order_id,
                "processed_at": fields.Datetime.now(),
                "error_code": False,
                "error_text": False,
            }
        )
        self.production_id.sudo().write(
            {
                "mes_state": "cancelled" if self.order_action == "cancel" else "acknowledged",
                "mes_order_id": ack.mes_order_id,
            }
        )
        return "duplicate at the MES" if ack.duplicate else f"MES order {ack.mes_order_id}"

    def _set_refused(self, err):
        """The MES refused an outbound message for good (MesPermanentError): rejected."""
        code = f"mes_http_{err.status}" if err.status else "mes_refused"
        self.write(
            {
                "state": "rejected",
                "error_code": code,
                "cause_code": code,
                "cause_value": False,
                "error_text": str(err),
                "processed_at": fields.Datetime.now(),
            }
        )
        return str(err)
