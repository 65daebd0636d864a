"""Lanes: the inbound messages of one order, applied in the MES's order by one job.

A lane is the ordered backlog of one order of one backend (or a single message that
names no order). The intake makes sure one job is queued per lane that has work (queue
job identity key), not one per message. The lane's job takes the lane, applies its
messages in order, each in its own savepoints, and stops at the first that waits (its
order, a lot, a missing sequence number: the job comes back when it may have come) or
needs a person (error: only this lane stops); after a bound it hands over to a new job.
Automatic state changes write no chatter: people's actions do.
"""

import time

from odoo import models

from odoo.addons.queue_job.exception import RetryableJobError

from ..exceptions import MesWaiting
from .mes_message import bring_forward

# One job applies at most this many messages, for at most this long, then queues the
# next: its transaction holds the stock it posted, which other orders' jobs may need.
LANE_LIMIT = 200
LANE_SECONDS = 5
OPEN = ("received", "waiting", "error")
# Missing sequence numbers named in a message: the first ones.
MISSING_SHOWN = 20


class MesMessage(models.Model):
    _inherit = "mes.message"

    def _lane_key(self):
        self.ensure_one()
        if self.order_ref:
            return f"o:{self.backend_id.id}:{self.order_ref}"
        return f"m:{self.id}"

    def _lane_domain(self, key):
        kind, _sep, rest = key.partition(":")
        if kind == "m":
            return [("id", "=", int(rest))]
        backend_id, _sep, order_ref = rest.partition(":")
        return [
            ("backend_id", "=", int(backend_id)),
            ("direction", "=", "inbound"),
            ("order_ref", "=", order_ref),
        ]

    def _lane_head(self, key):
        """The first message of the lane not yet applied (or cancelled), in the MES's order."""
        return self.search(
            [*self._lane_domain(key), ("state", "in", OPEN)],
            order="sequence, occurred_at, id",
            limit=1,
        )

    def _enqueue_lanes(self, eta=None):
        """Queue the job of each lane these messages belong to (one job per lane).

        A lane whose job is queued already keeps it; without ``eta`` (new work, a
        person's retry or cancel) a job planned for later is brought forward.
        """
        keys = {}
        for message in self:
            keys.setdefault(message._lane_key(), message)
        for key, message in keys.items():
            backend = message.backend_id
            job = (
                self.browse()
                .with_user(backend.user_id)
                .with_context(allowed_company_ids=backend.company_id.ids)
                .with_delay(
                    description=self.env._("MES: apply the messages of %s", message._lane_name()),
                    identity_key=f"mes-lane:{key}",
                    eta=eta,
                )
                ._run_lane(key)
            )
            if not eta:
                bring_forward(job)

    def _lane_name(self):
        self.ensure_one()
        return self.env._("order %s", self.order_ref) if self.order_ref else self.display_name

    def _lane_job(self):
        """The newest job of this message's lane."""
        self.ensure_one()
        return (
            self.env["queue.job"]
            .sudo()
            .search(
                [("identity_key", "=", f"mes-lane:{self._lane_key()}")],
                order="date_created desc, id desc",
                limit=1,
            )
        )

    def _run_lane(self, key, limit=LANE_LIMIT, seconds=LANE_SECONDS):
        """Apply the lane's messages in order (queue job); see the module's description."""
        if not self.env.su:
            # The job runs as the backend's integration user (authorship of what it posts)
            # in superuser mode: messages themselves change only through code like this.
            return self.sudo()._run_lane(key, limit, seconds)
        self = self.with_context(tracking_disable=True)
        self.env.cr.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", (f"mes:lane:{key}",))
        if not self.env.cr.fetchone()[0]:
            raise RetryableJobError(
                "another job is applying this lane", seconds=2, ignore_retry=True
            )
        deadline = time.monotonic() + seconds
        done = 0
        while True:
            applied = f"{done} message(s) applied"
            head = self._lane_head(key)
            if not head:
                return applied
            if head.state == "error":
                self._locate_lane(key)
                return f"{applied}; stopped at {head.display_name}, in error"
            if done >= limit or time.monotonic() >= deadline:
                head._enqueue_lanes()
                return f"{applied}; the rest in a new job"
            result = head._process_one()
            if head.state != "processed":
                self._locate_lane(key)
                return f"{applied}; then {head.display_name}: {result}"
            done += 1

    def _locate_lane(self, key):
        """The messages held up behind a stopped lane show under their order, product and
        work center meanwhile (dashboards, the order's reconciliation)."""
        held_up = self.search(
            [*self._lane_domain(key), ("state", "=", "received"), ("production_id", "=", False)],
            limit=LANE_LIMIT,
        )
        for message in held_up:
            with self.env.cr.savepoint():
                message._locate()

    def _missing_sequences(self):
        """Sequence numbers below this message's that its order has not received, when the
        backend's MES numbers each order's events 1, 2, 3, ... (empty otherwise)."""
        self.ensure_one()
        if (
            self.sequence <= 1
            or not self.order_ref
            or self.backend_id.sequence_numbering != "per_order"
        ):
            return []
        # The numbers held (at most as many as the order's messages), never the range:
        # the MES may send any number up to 2^31 - 1.
        self.env.cr.execute(
            """
            SELECT DISTINCT sequence FROM mes_message
             WHERE backend_id = %s AND direction = 'inbound' AND order_ref = %s
               AND sequence BETWEEN 1 AND %s
             ORDER BY sequence
            """,
            (self.backend_id.id, self.order_ref, self.sequence - 1),
        )
        missing, expected = [], 1
        for (held,) in [*self.env.cr.fetchall(), (self.sequence,)]:
            while expected < held and len(missing) <= MISSING_SHOWN:
                missing.append(expected)
                expected += 1
            if len(missing) > MISSING_SHOWN:
                break
            expected = held + 1
        return missing

    def _check_sequence_gap(self):
        """Wait (:class:`MesWaiting`) while earlier events of the order have not arrived."""
        missing = self._missing_sequences()
        if not missing:
            return
        shown = ", ".join(str(n) for n in missing[:MISSING_SHOWN])
        if len(missing) > MISSING_SHOWN:
            shown += ", ..."
        raise MesWaiting(
            "missing_sequence",
            self.env._(
                "the events of order %(ref)s the MES numbered %(missing)s (this one is "
                "number %(seq)s and the MES has not sent those yet)",
                ref=self.order_ref,
                missing=shown,
                seq=self.sequence,
            ),
            f"{self.order_ref} #{shown}",
        )
