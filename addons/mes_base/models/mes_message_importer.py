"""Importer: inbound messages applied to Odoo, in lanes.

A lane holds the inbound messages of one order, applied in the MES's order by one job.

A lane is the ordered backlog of one order of one backend (or a single message that
names no order). The intake makes sure one job is queued per lane that has work (queue
job identity key), not one per message. The lane's job takes the lane, applies its
messages in order, each in its own savepoints, and stops at the first that waits (its
order, a lot, a missing sequence number: the job comes back when it may have come) or
needs a person (error: only this lane stops); after a bound it hands over to a new job.
Automatic state changes write no chatter: people's actions do.
"""

import json
import logging
import threading
import time
from datetime import timedelta

from psycopg2 import OperationalError
from psycopg2 import errors as pg_errors

from odoo import api, fields, models, modules
from odoo.exceptions import UserError, ValidationError

from odoo.addons.queue_job.exception import RetryableJobError

from ..exceptions import MesDataError, MesWaiting
from .mes_message import MES_ORDER_LANE, NO_TROUBLE, bounded_cause, bring_forward, cause_name
from .mrp_production import APPLYING_MES_REPORT

_logger = logging.getLogger(__name__)

# One job applies at most this many messages, for at most this long, then queues the
# next: its transaction holds the stock it posted, which other orders' jobs may need.
LANE_LIMIT = 200
LANE_SECONDS = 5
OPEN = ("received", "waiting", "error")
# Missing sequence numbers named in a message: the first ones.
MISSING_SHOWN = 20
# Seconds between tries of a waiting message: soon at first, then every 10 minutes.
WAIT_DELAYS = (10, 30, 60, 120, 300, 600)
# What PostgreSQL answers when two transactions meet on the same rows.
CONFLICTS = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected, pg_errors.LockNotAvailable)
# A lane with work and no job for this long is queued again (see _cron_requeue_lanes).
REQUEUE_AFTER = timedelta(minutes=2)
ENDED = ("done", "cancelled")


def _duration(env, delta):
    """A duration as people say it: 45 minutes, 3 hours, 2 days."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return env._("%s minutes", minutes)
    if minutes < 48 * 60:
        return env._("%s hours", minutes // 60)
    return env._("%s days", minutes // (24 * 60))


def lane_key(backend_id, order_ref, message_id):
    """The lane of a message: its order's (per backend), else its own."""
    return f"o:{backend_id}:{order_ref}" if order_ref else f"m:{message_id}"


def parse_lane_key(key):
    """(backend id, order reference) of an order's lane, or (None, message id)."""
    kind, _sep, rest = key.partition(":")
    if kind == "m":
        return None, int(rest)
    backend_id, _sep, order_ref = rest.partition(":")
    return int(backend_id), order_ref


# Set while this thread applies a lane (see ConflictLogFilter).
_APPLYING = threading.local()


class ConflictLogFilter(logging.Filter):
    """Odoo logs every query PostgreSQL refuses as an ERROR ("bad query"). While a lane
    is applied, a serialization conflict is expected and handled (the job is tried again
    a second later): it is logged as INFO there, as an ERROR anywhere else."""

    def filter(self, record):
        if (
            getattr(_APPLYING, "lane", None)
            and record.levelno == logging.ERROR
            and "could not serialize access" in record.getMessage()
        ):
            record.levelno, record.levelname = logging.INFO, "INFO"
            lane = _APPLYING.lane.replace("%", "%%")
            record.msg = f"MES lane {lane}, tried again: {record.msg}"
        return True


logging.getLogger("odoo.sql_db").addFilter(ConflictLogFilter())


# One model, one file per job (intake, importer, exporter) so that each is found by its
# name: kept apart on purpose.
class MesMessage(models.Model):
    _inherit = "mes.message"  # pylint: disable=consider-merging-classes-inherited

    def _lane_key(self):
        self.ensure_one()
        return lane_key(self.backend_id.id, self.order_ref, self.id)

    def _lane_domain(self, key):
        backend_id, ref = parse_lane_key(key)
        if backend_id is None:
            return [("id", "=", ref)]
        return [
            ("backend_id", "=", backend_id),
            ("direction", "=", "inbound"),
            ("order_ref", "=", ref),
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
        self._enqueue_lane_keys({message._lane_key(): None for message in self}, eta=eta)

    @api.model
    def _enqueue_lane_keys(self, keys, eta=None):
        """Queue the job of each of these lanes, by key (see :meth:`_enqueue_lanes`):
        nothing of their messages is read, only their keys."""
        backends = self.env["mes.backend"].sudo()
        for key in keys:
            backend_id, ref = parse_lane_key(key)
            if backend_id is not None:
                backend = backends.browse(backend_id)
                name = self.env._("order %s", ref)
            else:
                message = self.sudo().browse(ref)
                backend, name = message.backend_id, message.display_name
            job = (
                self.browse()
                .with_user(backend.user_id)
                .with_context(allowed_company_ids=backend.company_id.ids)
                .with_delay(
                    description=self.env._("MES: apply the messages of %s", name),
                    identity_key=f"mes-lane:{key}",
                    eta=eta,
                )
                ._run_lane(key)
            )
            if not eta:
                bring_forward(job)

    @api.model
    def _cron_requeue_lanes(self):
        """Queue a job for each lane that has had work and no job for a while (safety net).

        The intake queues a lane's job in the transaction that stores its messages. A lane
        job that was already on its way when that transaction looked for it (dispatched,
        not started) may begin before those messages are committed and finish without
        seeing them: they are queued here, as are any whose job was lost (deleted by
        hand, a database restored without its jobs). Lanes with a job queued keep it as
        it is: a waiting lane's next try is not brought forward. Lanes stopped at a
        message in error wait for a person; a lane whose last job failed too (its head
        shows the failure, in error).
        """
        cutoff = fields.Datetime.now() - REQUEUE_AFTER
        self.flush_model(["state", "create_date", "next_attempt_at", "order_ref"])
        self.env.cr.execute(
            """
            SELECT CASE WHEN m.order_ref IS NULL THEN 'm:' || m.id
                        ELSE 'o:' || m.backend_id || ':' || m.order_ref END AS lane,
                   min(m.id)
              FROM mes_message m
             WHERE m.direction = 'inbound'
               AND ((m.state = 'received' AND m.create_date < %s)
                    OR (m.state = 'waiting' AND m.next_attempt_at < %s))
               AND NOT EXISTS (
                   SELECT 1 FROM mes_message e
                    WHERE e.order_ref = m.order_ref AND e.backend_id = m.backend_id
                      AND e.direction = 'inbound' AND e.state = 'error')
             GROUP BY lane
            """,
            (cutoff, cutoff),
        )
        heads = dict(self.env.cr.fetchall())
        if not heads:
            return 0
        self.env["queue.job"].flush_model(["identity_key", "state"])
        # The newest job of each lane: queued or running, or failed (for a person).
        self.env.cr.execute(
            """
            SELECT DISTINCT ON (identity_key) identity_key, state, id FROM queue_job
             WHERE identity_key = ANY(%s)
             ORDER BY identity_key, date_created DESC, id DESC
            """,
            ([f"mes-lane:{lane}" for lane in heads],),
        )
        newest = {
            key.removeprefix("mes-lane:"): (state, job_id)
            for key, state, job_id in self.env.cr.fetchall()
        }
        queued = {lane for lane, (state, _j) in newest.items() if state not in ENDED}
        # A failed job whose failure its head does not show yet (the head was locked by
        # the failing job itself at that moment): shown now.
        failed = [job_id for state, job_id in newest.values() if state == "failed"]
        self.env["queue.job"].sudo().browse(failed)._mes_lane_failed()
        lost = self.sudo().browse([first for lane, first in heads.items() if lane not in queued])
        if lost:
            _logger.info("MES: %s lane(s) had work and no job; queued again", len(lost))
            lost._enqueue_lanes()
        return len(lost)

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
        if not self._take_lane(key):
            raise RetryableJobError(
                "another job is applying this lane", seconds=2, ignore_retry=True
            )
        _APPLYING.lane = key
        try:
            return self._apply_lane(key, limit, seconds)
        except CONFLICTS as err:
            # Another transaction changed rows this one had read (the stock of a product
            # other orders consume or make too, ...): this message again in a moment, with
            # a fresh view of the database. Not a failure, however often it happens.
            raise RetryableJobError(
                f"conflict with another transaction ({type(err).__name__}); tried again",
                seconds=1,
                ignore_retry=True,
            ) from err
        finally:
            _APPLYING.lane = None

    def _take_lane(self, key):
        """Take the lane for this transaction, unless another job has it."""
        self.env.cr.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", (f"mes:lane:{key}",))
        return self.env.cr.fetchone()[0]

    def _apply_lane(self, key, limit, seconds):
        deadline = time.monotonic() + seconds
        done = 0
        while True:
            applied = f"{done} message(s) applied"
            head = self._lane_head(key)
            if not head:
                return applied
            if head.state == "error":
                self._locate_lane(key, head)
                return f"{applied}; stopped at {head.display_name}, in error"
            if done >= limit or time.monotonic() >= deadline:
                head._enqueue_lanes()
                return f"{applied}; the rest in a new job"
            result = head._process_one()
            if head.state != "processed":
                self._locate_lane(key, head)
                return f"{applied}; then {head.display_name}: {result}"
            done += 1
            if not modules.module.current_test and not self.env.context.get("mes_no_commit"):
                # Each message's posting is kept as soon as it is done: the next one
                # starts from a fresh view of the stock (short transactions meet others
                # less), and a job stopped later (a conflict, a kill) does not undo it.
                # The job function allows it (data/queue_job_data.xml): queue_job runs
                # the job in a cursor of its own.
                self.env.cr.commit()  # pylint: disable=invalid-commit
                if not self._take_lane(key):
                    return f"{done} message(s) applied; the rest by the job that took the lane"

    def _locate_lane(self, key, head):
        """The messages held up behind a stopped lane show under their order, product and
        work center meanwhile (dashboards, the order's reconciliation). One that waited
        for something of its own before ``head`` came in front of it is held up by
        ``head`` now: it says nothing of its own until the lane reaches it again."""
        behind = self.search(
            [*self._lane_domain(key), ("state", "=", "waiting"), ("id", "!=", head.id)]
        )
        behind.write(dict(NO_TROUBLE, state="received"))
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

    # Applying one message

    def _process(self):
        """Apply this inbound message, with the rest of its lane, in the MES's order
        (its lane's job does the same; see ``mes_message_importer.py``)."""
        self.ensure_one()
        return self._run_lane(self._lane_key())

    def _process_one(self):
        self._lock()
        self.invalidate_recordset()
        if self.state not in ("received", "waiting"):
            return f"nothing to do: message is {self.state}"
        # What the MES reports changes orders; those changes are not sent back to it.
        processor = self.env["mes.event.processor"].with_context(mes_report=APPLYING_MES_REPORT)
        handler = getattr(processor, f"_process_{self.message_type}", None)
        if handler is None:
            return self._set_error(
                "unsupported_type",
                self.env._("event_type: %r is not processed by this Odoo.", self.message_type),
            )
        errors = self._payload_errors()
        if errors:
            # Never applied as it is: the intake refused it, or its payload was damaged.
            return self._set_error(
                "invalid_message",
                "\n".join(str(e) for e in errors),
                ", ".join(sorted({e.field for e in errors})),
            )
        try:
            event = json.loads(self.payload)
            with self.env.cr.savepoint():
                self._locate()
            self._check_sequence_gap()
            with self.env.cr.savepoint():
                result = handler(self.with_context(mes_report=APPLYING_MES_REPORT), event)
        except MesWaiting as err:
            return self._wait(str(err), err.code, err.value)
        except MesDataError as err:
            return self._set_error(err.code, str(err), err.value)
        except (UserError, ValidationError) as err:
            return self._set_error(
                "odoo_refused", self.env._("Odoo refused the posting: %s", err.args[0])
            )
        except (RetryableJobError, OperationalError):
            raise  # lock or serialization conflict: queue_job tries again
        except Exception as err:
            # A defect, not bad data: keep the message visible instead of a silent failed job.
            _logger.exception("MES message %s could not be processed", self.id)
            return self._set_error(
                "internal_error",
                self.env._(
                    "Unexpected error (%(kind)s): %(err)s", kind=type(err).__name__, err=err
                ),
            )
        self.write(
            dict(
                NO_TROUBLE,
                state="processed",
                processed_at=fields.Datetime.now(),
                result_text=result,
                attempt_count=self.attempt_count + 1,
            )
        )
        self._acknowledge_order()
        return result

    def _named_order(self):
        """The order this report names: by Odoo's reference, or, in the lane of an MES
        order id (``MES:<id>``), by the MES's order id Odoo stored for it."""
        self.ensure_one()
        production = self.env["mrp.production"]
        if not self.order_ref:
            return production
        if self.order_ref.startswith(MES_ORDER_LANE) and self.mes_order_id:
            return production.search(
                [
                    ("mes_order_id", "=", self.mes_order_id),
                    ("company_id", "=", self.company_id.id),
                    ("mes_backend_id", "in", (self.backend_id.id, False)),
                ],
                order="id desc",
                limit=1,
            )
        named = production.search(
            [("name", "=", self.order_ref), ("company_id", "=", self.company_id.id)], limit=1
        )
        if named:
            return named
        # An order split as the MES reported (units of serial output, partial confirmations)
        # is renamed by Odoo (-001, -002): the MES goes on naming it as it was sent.
        return production.search(
            [
                ("mes_order_ref", "=", self.order_ref),
                ("company_id", "=", self.company_id.id),
                ("mes_backend_id", "=", self.backend_id.id),
            ],
            order="id desc",
            limit=1,
        )._mes_open_member()

    def _locate(self):
        """Link the message to its order, product and work center where they can be found.

        Outside the processing savepoint: a message in error still shows on the
        dashboards under its order, product and work center.
        """
        backend = self.backend_id
        vals = {}

        def resolve(mapping_type, code, fallback):
            try:
                return backend._resolve(mapping_type, code, "", fallback)
            except MesDataError:
                return None

        production = self.production_id
        if not production and self.order_ref:
            production = self._named_order()
            vals["production_id"] = production.id or False
        company = [False, self.company_id.id]
        if not self.product_id and self.reported_product:
            product = resolve(
                "product",
                self.reported_product,
                lambda code: self.env["product.product"].search(
                    [("default_code", "=", code), ("company_id", "in", company)], limit=1
                ),
            )
            vals["product_id"] = product.id if product else False
        if not self.workcenter_id:
            workcenter = None
            if self.reported_resource:
                workcenter = resolve(
                    "workcenter",
                    self.reported_resource,
                    lambda code: self.env["mrp.workcenter"].search(
                        [("code", "=", code), ("company_id", "in", company)], limit=1
                    ),
                )
            elif self.reported_operation and production:
                try:
                    workcenter = (
                        self.env["mes.event.processor"]
                        ._workorder(production, {"operation": self.reported_operation})
                        .workcenter_id
                    )
                except MesDataError:
                    workcenter = None
            vals["workcenter_id"] = workcenter.id if workcenter else False
        vals = {key: value for key, value in vals.items() if value}
        if vals:
            self.write(vals)

    def _acknowledge_order(self):
        """An MES that took an order without its id acknowledges it by reporting on it."""
        production = self.production_id
        if production.mes_state == "sent":
            mes_order_id = self.mes_order_id
            if mes_order_id and production._mes_order_id_holder(mes_order_id, self.backend_id):
                mes_order_id = False  # another order is that MES order: not this one too
            production.sudo().write(
                {
                    "mes_state": "acknowledged",
                    "mes_order_id": mes_order_id or production.mes_order_id,
                }
            )
            self.search(
                [
                    ("production_id", "=", production.id),
                    ("direction", "=", "outbound"),
                    ("state", "=", "sent"),
                ]
            ).write({"state": "acknowledged", "mes_order_id": self.mes_order_id})

    def _wait(self, reason, code, value=None):
        """Park the message until what it needs is there, with growing delays, then give up.

        ``code`` and ``value`` name what is awaited (``unknown_lot``, ``L-7 (RM-1)``):
        kept when the wait turns into an error, so that one fix (receiving the lot)
        clears the group.
        """
        now = fields.Datetime.now()
        since = self.waiting_since or now
        timeout = timedelta(minutes=self.backend_id.waiting_timeout or 0)
        if now - since >= timeout:
            return self._set_error(
                "waited_too_long",
                self.env._(
                    "Waited %(how_long)s for %(reason)s. Check that it exists in Odoo (or that "
                    "the MES sent it), then retry, or cancel this message.",
                    how_long=_duration(self.env, now - since),
                    reason=reason,
                ),
                value,
                cause_code=code,
            )
        attempts = self.attempt_count + 1
        delay = min(WAIT_DELAYS[min(attempts, len(WAIT_DELAYS)) - 1], timeout.total_seconds())
        self.write(
            {
                "state": "waiting",
                "waiting_since": since,
                "attempt_count": attempts,
                "next_attempt_at": now + timedelta(seconds=delay),
                "error_code": "waiting",
                "cause_code": code,
                "cause_value": value or False,
                # Written with its parts, not left to a recompute: the cause groups the
                # message on the dashboards and in its error cause.
                "error_cause": cause_name("waiting", code, bounded_cause(value or False)),
                "error_text": self.env._("Waiting for %s.", reason),
            }
        )
        self._enqueue(eta=delay)
        return f"waiting for {reason}"

    def _set_error(self, code, text, value=None, cause_code=None):
        """In error for a person: ``code`` says what happened; ``cause_code`` (when it is
        another, e.g. what a message waited for too long) and ``value`` what is at fault."""
        self.write(
            {
                "state": "error",
                "error_code": code,
                "cause_code": cause_code or code,
                "cause_value": value or False,
                "error_cause": cause_name(code, cause_code or code, bounded_cause(value or False)),
                "error_text": text,
                "next_attempt_at": False,
                "attempt_count": self.attempt_count + 1,
            }
        )
        return f"error {code}: {text}"
