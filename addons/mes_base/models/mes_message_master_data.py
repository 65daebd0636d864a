"""Master data revisions delivered to the MES, and what waits for them."""

import json

from odoo import fields, models

from odoo.addons.queue_job.exception import RetryableJobError

from mes_connector.exceptions import MesPermanentError, MesTransientError

from ..locking import try_lock

# How long a message waits for master data before it looks again (it is woken at once
# when the MES acknowledges what it waits for): on its way, or refused by the MES.
WAIT_ON_ITS_WAY = 30
WAIT_REFUSED = 600


class MesMessage(models.Model):
    _inherit = "mes.message"  # pylint: disable=consider-merging-classes-inherited

    def _wait_for_master_data(self):
        """Send nothing before the MES knows the master data this message names."""
        missing = self.needs_master_data_ids._missing()
        if missing:
            refused = missing.filtered(lambda r: r.state in ("refused", "failed", "invalid"))
            raise RetryableJobError(
                missing._waiting_text(),
                seconds=WAIT_REFUSED if refused else WAIT_ON_ITS_WAY,
                ignore_retry=True,
            )

    def _master_data_revisions(self, domain):
        """Other revisions of this message's master data."""
        return self.search(
            [
                ("master_data_id", "=", self.master_data_id.id),
                ("direction", "=", "outbound"),
                ("id", "!=", self.id),
                *domain,
            ],
            order="revision",
        )

    def _supersede(self, by):
        """Revisions the MES no longer needs: each revision carries the whole record,
        the later one holds what this one said."""
        self.write(
            {
                "state": "cancelled",
                "cancel_reason": self.env._(
                    "Superseded by revision %s: the MES gets the latest only.", by.revision
                ),
                "next_attempt_at": False,
                "processed_at": fields.Datetime.now(),
            }
        )

    def _send_master_data(self):
        """Deliver one master data revision (queue job of _send): the latest only, after
        what it names, once per key at the MES (which keeps the highest revision it got:
        one overtaken on its way is refused as stale)."""
        later = self._master_data_revisions(
            [("revision", ">", self.revision), ("state", "!=", "cancelled")]
        )
        if later:
            self._supersede(later[-1])
            return f"superseded by revision {later[-1].revision}"
        earlier = self._master_data_revisions(
            [("revision", "<", self.revision), ("state", "in", ("pending", "failed"))]
        )
        if earlier and not try_lock(earlier):
            # An earlier revision is being delivered: the MES must not get it after this.
            raise RetryableJobError(
                f"revision {earlier[0].revision} of {self.master_data_id.display_name} is "
                "being delivered",
                seconds=5,
                ignore_retry=True,
            )
        earlier._supersede(self)
        self._wait_for_master_data()
        record = self.master_data_id
        client = self.backend_id._get_client()
        try:
            if self.payload_format == "xml":
                ack = client.send_master_data_xml(self.payload.encode(), self.external_id)
            else:
                ack = client.send_master_data(json.loads(self.payload), self.external_id)
        except MesTransientError as err:
            raise RetryableJobError(str(err), seconds=err.retry_after) from err
        except MesPermanentError as err:
            return self._set_refused(err)
        self.write(
            {
                "state": "acknowledged",
                "processed_at": fields.Datetime.now(),
                "error_code": False,
                "cause_code": False,
                "cause_value": False,
                "error_text": False,
            }
        )
        # What the MES refused or never got before this revision is settled by it.
        self._master_data_revisions(
            [("revision", "<", self.revision), ("state", "in", ("rejected", "failed"))]
        )._supersede(self)
        record._acknowledged(self)
        return "duplicate at the MES" if ack.duplicate else f"{record.display_name} acknowledged"
