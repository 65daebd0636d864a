"""Intake: what the MES sends, stored exactly as received before it is answered.

One event, a batch or a B2MML document: looked up by event id (a redelivery is a
duplicate of the stored row), judged event by event, inserted in one statement in the
order of the ids, and its processing queued on the lanes of its orders.
"""

import hashlib
import json
import re
import uuid
from collections import Counter
from datetime import UTC

from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.tools import SQL, mute_logger

from odoo.addons.queue_job.job import identity_exact

from mes_connector import bod
from mes_connector.b2mml import read_production_performance
from mes_connector.exceptions import (
    MessageValidationError,
)
from mes_connector.validation import validation_errors

from ..exceptions import MesConcurrentDelivery
from .mes_event_processor import utc_naive
from .mes_message import (
    ERROR_STATES,
    REPORTED_COLUMNS,
    bounded_cause,
    cause_name,
    first_line,
    order_lane,
)
from .mes_message_importer import lane_key

# Events of a B2MML document whose processing is queued in the request; beyond, by a job,
# this many per run.
QUEUE_SLICE = 500
# Lanes whose jobs an intake request queues itself; more are queued by a job.
LANES_IN_REQUEST = 4
MAX_SEQUENCE = 2147483647  # a PostgreSQL integer, as the event schema says
# What an event id must look like to be a key (the schema's pattern of event_id).
EVENT_ID = re.compile(r"[A-Za-z0-9._:/-]{1,128}")
# The columns the intake fills (see _intake_vals and _reported_vals), and with the
# record's own, those it inserts.
INSERTED = (
    "backend_id",
    "direction",
    "message_type",
    "external_id",
    "payload_format",
    "order_ref",
    "mes_order_id",
    "state",
    "parent_id",
    "error_code",
    "cause_code",
    "cause_value",
    "error_text",
    "payload",
    "payload_original",
    "sequence",
    "occurred_at",
    *REPORTED_COLUMNS,
)
COLUMNS = (
    "id",
    "company_id",
    "create_uid",
    "write_uid",
    "create_date",
    "write_date",
    "error_cause",
    *INSERTED,
)

# Integer columns among them: a whole number the MES wrote as 1.0 is stored as 1.
INTEGERS = ("backend_id", "parent_id", "sequence", "reported_operation")
# Rows given as one JSON array (see _insert_inbound).
INSERT_ROWS = (
    "INSERT INTO mes_message ({columns}) SELECT {columns}"
    " FROM json_populate_recordset(NULL::mes_message, %s)"
    " ON CONFLICT DO NOTHING RETURNING id"
).format(columns=", ".join(f'"{column}"' for column in COLUMNS))


def _storable(text):
    """Text PostgreSQL can hold: no NUL, no lone surrogate (escaped where they were)."""
    text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _column_text(value, size):
    """A value the MES sent, as the text of a column (what does not fit is left out)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    return _storable(str(value))[:size] or False


def _payload_vals(raw, event):
    """``payload``: the message as text, exactly as received where the bytes are UTF-8 text
    PostgreSQL can hold; otherwise a readable copy, and the exact bytes in ``payload_raw``."""
    if raw is None:
        text = json.dumps(event, ensure_ascii=False)
        if _storable(text) != text:
            text = json.dumps(event, ensure_ascii=True)
        return {"payload": text}
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and _storable(text) == text and not text.startswith("\ufeff"):
        return {"payload": text}
    readable = raw.decode("utf-8", "backslashreplace").removeprefix("\ufeff")
    return {"payload": _storable(readable), "payload_raw": raw}


# One model, one file per job (intake, importer, exporter) so that each is found by its
# name: kept apart on purpose.
class MesMessage(models.Model):
    _inherit = "mes.message"  # pylint: disable=consider-merging-classes-inherited

    # Intake

    @api.model
    def _intake(self, backend, raw, event, rejection=None):
        """Store one inbound message and queue its processing; never loses what was received.

        ``raw`` is the body as it came from the MES (bytes), or None for an event of a
        batch (kept as its own JSON text); ``event`` is its decoded JSON. ``rejection`` is
        ``(error code, [FieldError])`` when the body could not even be decoded. Returns the
        answer for the MES: a dict whose ``status`` is accepted, duplicate or rejected
        (with ``errors`` naming each field). Whatever the event holds, it is stored: the
        columns take only what fits them, the payload keeps everything.
        """
        prepared = self._intake_vals(backend, raw, event, rejection)
        return self._intake_prepared(backend, [prepared])[0]

    @api.model
    def _intake_batch(self, backend, events, validated=False, enqueue=True, held=None):
        """Store the events of a batch or of a B2MML document; answers in the same order.

        One query finds the events already held, one insert stores the new ones, in the
        order of their ids (two deliveries sharing events take their locks in the same
        order). ``validated``: the events were checked already (read from a document).
        Without ``enqueue`` no processing job is queued: the caller queues them.
        ``held``: the messages of these events already stored, when the caller looked.
        """
        prepared = [
            self._intake_vals(backend, None, event, validated=validated) for event in events
        ]
        return self._intake_prepared(backend, prepared, enqueue=enqueue, held=held)

    @api.model
    def _intake_vals(self, backend, raw, event, rejection=None, validated=False):
        """(values of the message to store, its field errors) for one inbound event."""
        if rejection:
            error_code, errors = rejection
        elif validated:
            error_code, errors = "invalid_message", []
        else:
            error_code, errors = "invalid_message", validation_errors(event, "event.v1.json")
        event = event if isinstance(event, dict) else {}
        external_id = event.get("event_id")
        if not (isinstance(external_id, str) and EVENT_ID.fullmatch(external_id)):
            external_id = False
        message_type = event.get("event_type")
        if not isinstance(message_type, str) or message_type not in dict(
            self._fields["message_type"].selection
        ):
            message_type = "unknown"
        vals = {
            "backend_id": backend.id,
            "direction": "inbound",
            "message_type": message_type,
            "external_id": external_id,
            "payload_format": "json",
            "order_ref": _column_text(order_lane(event), 64),
            "mes_order_id": _column_text(event.get("mes_order_id"), 64),
            "state": "error" if errors else "received",
            "parent_id": self.env.context.get("mes_parent_id") or False,
            "error_code": error_code if errors else False,
            "cause_code": error_code if errors else False,
            "cause_value": ", ".join(sorted({e.field for e in errors})) or False,
            "error_text": "\n".join(str(e) for e in errors) or False,
            **_payload_vals(raw, event),
        }
        if not errors:
            vals["sequence"] = event.get("sequence") or 0
            vals["occurred_at"] = utc_naive(event["occurred_at"])
            vals.update(self._reported_vals(event))
        return vals, errors

    @api.model
    def _intake_prepared(self, backend, prepared, enqueue=True, held=None):
        """Store prepared ``(vals, errors)``: the answers, in order (see :meth:`_intake`).

        Raises :class:`MesConcurrentDelivery` when another request stores one of the same
        events at this moment (the caller rolls back and asks the MES to send again).
        """
        if held is None:
            ids = {vals["external_id"] for vals, _errors in prepared if vals["external_id"]}
            held = self._find_inbound(backend, ids)
        # (Read in this transaction's snapshot: the caller's look is as good as a new one.)
        held = {message.external_id: message for message in held}
        answers, new, later = [], {}, []
        for vals, errors in prepared:
            external_id = vals["external_id"]
            answer = {"event_id": external_id or None}
            answers.append(answer)
            existing = held.get(external_id)
            if existing and not errors and existing._refused_as_invalid():
                # The MES resends, corrected, an event Odoo refused and nobody has
                # cancelled (a person's decision stands): take the correction, keep
                # what came first.
                existing._take_correction(vals, enqueue)
                held.pop(external_id)
                answer.update(status="accepted", message_id=existing.id)
            elif existing:
                answer.update(status="duplicate", message_id=existing.id, state=existing.state)
            elif external_id in new:
                # Twice in this batch: a duplicate of the first, or its correction when the
                # first was refused and this one is valid (stored once, as corrected).
                first_vals, first_errors, first_answer = new[external_id]
                if first_errors and not errors:
                    first_answer.update(errors=[e.as_dict() for e in first_errors])
                    later.append((first_answer, external_id, "rejected"))
                    new[external_id] = (
                        dict(vals, payload_original=first_vals["payload"]),
                        [],
                        answer,
                    )
                else:
                    later.append((answer, external_id, "duplicate"))
            else:
                new[external_id or object()] = (vals, errors, answer)
        if not new:
            return answers
        # In the order of the ids: two deliveries sharing events wait for each other on the
        # unique index in the same order, never in a cycle.
        to_create = sorted(new.values(), key=lambda item: item[0]["external_id"] or "")
        messages = self._insert_inbound([vals for vals, _errors, _answer in to_create])
        by_id = {}
        for message, (vals, errors, answer) in zip(messages, to_create, strict=True):
            by_id[vals["external_id"]] = message
            answer["message_id"] = message.id
            if errors:
                answer.update(status="rejected", errors=[e.as_dict() for e in errors])
            else:
                answer["status"] = "accepted"
        for answer, external_id, status in later:
            first = by_id[external_id]
            answer.update(status=status, message_id=first.id)
            if status == "duplicate":
                answer["state"] = first.state
        refused = [
            (message, vals["order_ref"])
            for message, (vals, errors, _answer) in zip(messages, to_create, strict=True)
            if errors and vals["order_ref"]
        ]
        if refused:
            self._link_refused(backend, refused)
        if enqueue:
            lanes = {}
            for message, (vals, _errors, _answer) in zip(messages, to_create, strict=True):
                if vals["state"] == "received":
                    key = lane_key(backend.id, vals["order_ref"], message.id)
                    lanes.setdefault(key, []).append(message.id)
            self._enqueue_in_order(backend, lanes)
        return answers

    @api.model
    def _link_refused(self, backend, refused):
        """Refused events that name an order of this plant show under it (its MES
        messages, its banner): (message, order reference) pairs."""
        productions = (
            self.env["mrp.production"]
            .sudo()
            .search(
                [
                    ("name", "in", list({ref for _message, ref in refused})),
                    ("company_id", "=", backend.company_id.id),
                ]
            )
        )
        by_name = {production.name: production for production in productions}
        for message, ref in refused:
            if ref in by_name:
                message.sudo().production_id = by_name[ref]

    @api.model
    def _insert_inbound(self, vals_list):
        """Insert new inbound messages, in this order, in one statement: their records.

        Written in SQL, not through the ORM: the intake's columns are plain values (no
        computed field, no translation, no chatter on creation), and an ORM create costs
        several times the insert itself. A message whose event id another transaction is
        storing at this moment makes PostgreSQL wait for that transaction; once it has
        committed, the row it stored is not in this transaction's snapshot and PostgreSQL
        refuses the insert as a serialization failure: Odoo then runs the request again
        (the body is kept, see ir_http.py), which finds the event stored, a duplicate.
        Raw bytes (``payload_raw``, single bodies only) take the ORM's way.
        """
        if any("payload_raw" in vals for vals in vals_list):
            backend = self.env["mes.backend"].sudo().browse(vals_list[0]["backend_id"])
            creator = (
                self.with_user(backend.user_id or self.env.user)
                .sudo()
                .with_context(mail_create_nolog=True, tracking_disable=True)
            )
            try:
                with mute_logger("odoo.sql_db"), self.env.cr.savepoint():
                    return creator.create(vals_list)
            except pg_errors.UniqueViolation as err:
                raise MesConcurrentDelivery(
                    "another request stored one of these events at the same moment"
                ) from err
        self.env.cr.execute(
            "SELECT nextval('mes_message_id_seq') FROM generate_series(1, %s)", (len(vals_list),)
        )
        ids = [row[0] for row in self.env.cr.fetchall()]
        now = self.env.cr.now()
        # Each message as its backend's: its company, created by its integration user.
        owners = {}
        rows = []
        for message_id, vals in zip(ids, vals_list, strict=True):
            backend_id = vals["backend_id"]
            if backend_id not in owners:
                backend = self.env["mes.backend"].sudo().browse(backend_id)
                owners[backend_id] = (backend.company_id.id, backend.user_id.id or self.env.uid)
            company_id, uid = owners[backend_id]
            row = {
                "id": message_id,
                "company_id": company_id,
                "create_uid": uid,
                "write_uid": uid,
                "create_date": now,
                "write_date": now,
            }
            for column, value in vals.items():
                if column not in INSERTED:
                    raise ValueError(f"mes.message: {column} is not stored by the intake")
                if value is False:
                    continue
                if column in INTEGERS and isinstance(value, float):
                    # 1.0 is an integer to JSON Schema; PostgreSQL reads only 1 as one.
                    value = int(value)
                row[column] = value
            row["cause_value"] = bounded_cause(row.get("cause_value"))
            row["error_cause"] = (
                cause_name(row.get("error_code"), row.get("cause_code"), row["cause_value"]) or None
            )
            rows.append(row)
        # The rows as one JSON parameter, read by PostgreSQL into the table's columns:
        # a statement of one value, not of thousands (a column missing from a row is NULL).
        self.env.cr.execute(
            SQL(INSERT_ROWS, json.dumps(rows, default=str)),
            log_exceptions=False,
        )
        if len(self.env.cr.fetchall()) != len(ids):
            # Only under a weaker isolation than Odoo's: another transaction's row is
            # visible but was not found by the duplicate search. Nothing is kept (the
            # request is rolled back).
            raise MesConcurrentDelivery(
                "another request stored one of these events at the same moment"
            )
        # What the ORM holds of the records these rows belong to (a document's events, a
        # backend's messages) is read again.
        self.env["mes.backend"].invalidate_model(["mes_message_ids"])
        self.invalidate_model(["child_ids"])
        if any(vals["state"] in ERROR_STATES for vals in vals_list):
            self.env["mes.error.cause"]._trigger_sync()
        return self.browse(ids)

    @api.model
    def _enqueue_in_order(self, backend, lanes):
        """Queue the processing of new inbound messages of ``backend``: one job per lane
        (order), which applies them in the MES's order whatever order they were stored in.

        ``lanes``: the ids of the new messages, by lane key. A request queues the jobs of
        a few lanes itself; the lanes of a batch reporting on more orders are queued by one
        job of their own, so that the MES's answer does not wait for them (stored in the
        same transaction: none is lost).
        """
        if not lanes:
            return
        if len(lanes) <= LANES_IN_REQUEST:
            self._enqueue_lane_keys(lanes)
            return
        messages = self.browse([message_id for ids in lanes.values() for message_id in ids])
        messages.with_user(backend.user_id).with_context(
            allowed_company_ids=backend.company_id.ids
        ).with_delay(
            description=self.env._(
                "MES: queue the processing of %s messages received together", len(messages)
            ),
            priority=1,
        )._queue_lanes(sorted(lanes))

    def _queue_lanes(self, keys=None):
        """Queue these lanes (job, see :meth:`_enqueue_in_order`); without ``keys`` (a job
        queued by an earlier version), the lanes of these messages still received."""
        if keys is not None:
            self._enqueue_lane_keys(keys)
            return f"{len(keys)} lanes queued"
        messages = self.sudo().filtered(lambda m: m.state == "received")
        messages._enqueue_lanes()
        return f"{len(messages)} messages queued"

    def _refused_as_invalid(self):
        """Refused by the intake for what it held (not cancelled by a person since)."""
        self.ensure_one()
        return self.state == "error" and self.error_code == "invalid_message"

    def _take_correction(self, vals, enqueue=True):
        """A refused event, resent corrected by the MES, becomes the corrected one."""
        self.ensure_one()
        self.sudo().write(
            dict(
                vals,
                payload_original=self.payload_original or self.payload,
                error_code=False,
                error_text=False,
            )
        )
        self.with_user(self.backend_id.user_id).sudo()._message_log(
            body=self.env._("The MES resent this event corrected; the first one is kept.")
        )
        if enqueue:
            self._enqueue()

    @api.model
    def _intake_b2mml(self, backend, body):
        """Store a B2MML ProductionPerformance as received, then each event read from it.

        The document is kept whole (its own message, format XML); the events are
        messages of their own, linked to it, processed like JSON events. A document that
        cannot be read is kept, in error, and none of its events is taken.
        """
        external_id = f"b2mml:{hashlib.sha256(body).hexdigest()[:40]}"
        try:
            (events, envelope), errors = (
                read_production_performance(
                    body,
                    order_key=backend._b2mml_order_key(),
                    conventions=backend._b2mml_conventions(),
                ),
                [],
            )
        except MessageValidationError as err:
            events, errors, envelope = [], err.errors, getattr(err, "envelope", None)
        existing = self._find_inbound(backend, external_id)
        if existing:
            answer = {"status": "duplicate", "message_id": existing.id, "state": existing.state}
            # Answered as it was the first time: a document refused then is refused again.
            refused = existing.state == "error"
            return self._b2mml_answer(
                backend,
                envelope,
                answer,
                first_line(existing.error_text) or self.env._("already refused")
                if refused
                else self.env._("already received"),
                accepted=not refused,
            )
        vals = {
            "backend_id": backend.id,
            "direction": "inbound",
            "message_type": "b2mml_document",
            "external_id": external_id,
            **_payload_vals(body, None),
            "payload_format": "xml",
            "state": "error" if errors else "processed",
            "error_code": "invalid_b2mml" if errors else False,
            "error_text": "\n".join(str(e) for e in errors) or False,
            "processed_at": fields.Datetime.now(),
            "result_text": False if errors else self.env._("%s events read", len(events)),
        }
        try:
            with mute_logger("odoo.sql_db"), self.env.cr.savepoint():
                document = self.sudo().with_context(mail_create_nolog=True).create(vals)
        except pg_errors.UniqueViolation as err:
            raise MesConcurrentDelivery(
                "another request stored this document at the same moment"
            ) from err
        if errors:
            answer = {
                "status": "rejected",
                "message_id": document.id,
                "errors": [e.as_dict() for e in errors],
            }
            return self._b2mml_answer(backend, envelope, answer, *[str(e) for e in errors[:20]])
        # A document numbers its events from 1: per order, they come after what that
        # order already received, so documents apply in the order they arrive. Events
        # received before (a report resent, perhaps with more in it) take no number: they
        # are answered as duplicates, and the new ones follow what the order has.
        held = self._find_inbound(backend, {e["event_id"] for e in events})
        known = set(held.mapped("external_id"))
        numbered = [event for event in events if event["event_id"] not in known]
        refs = {order_lane(event) for event in numbered}
        last = self._last_sequences(backend, refs)
        counts = Counter(order_lane(event) for event in numbered)
        full = sorted(ref for ref in refs if last.get(ref, 0) + counts[ref] > MAX_SEQUENCE)
        if full:
            document.write(
                {
                    "state": "error",
                    "error_code": "sequence_exhausted",
                    "cause_code": "sequence_exhausted",
                    "cause_value": full[0],
                    "error_text": self.env._(
                        "Orders %(refs)s: the MES already numbered events of these orders up to "
                        "%(max)s; their events cannot be numbered after them.",
                        refs=", ".join(full[:10]),
                        max=MAX_SEQUENCE,
                    ),
                    "result_text": False,
                }
            )
            answer = {
                "status": "rejected",
                "message_id": document.id,
                "errors": [
                    {
                        "field": "order",
                        "value": full[0],
                        "reason": (f"the order's MES sequence is already {MAX_SEQUENCE}"),
                    }
                ],
            }
            return self._b2mml_answer(backend, envelope, answer, document.error_text)
        next_sequence = {ref: last.get(ref, 0) + 1 for ref in refs}
        for event in numbered:
            ref = order_lane(event)
            event["sequence"] = next_sequence[ref]
            next_sequence[ref] += 1
        intake = self.with_context(mes_parent_id=document.id)
        # Read and stored in this request (one insert); a large document's processing jobs
        # are queued by a job of its own, in slices, so that the answer does not wait.
        small = len(events) <= QUEUE_SLICE
        results = intake._intake_batch(backend, events, validated=True, enqueue=small, held=held)
        if not small:
            document._queue_read_events()
        answer = {"status": "accepted", "message_id": document.id, "results": results}
        return self._b2mml_answer(
            backend, envelope, answer, self.env._("%s events read", len(events))
        )

    @api.model
    def _b2mml_answer(self, backend, envelope, answer, *notes, accepted=None):
        """``answer``, with the BOD the MES's transaction asks for (``bod``, bytes) when it
        asks for one: an Acknowledge of a Process, a ConfirmBOD its sender wants."""
        answered = bod.answer(
            envelope,
            accepted=answer["status"] != "rejected" if accepted is None else accepted,
            noun_ids=envelope.noun_ids if envelope else (),
            notes=[note for note in notes if note],
            sender=backend.b2mml_logical_id,
            bod_id=str(uuid.uuid4()),
            created=fields.Datetime.now().replace(tzinfo=UTC, microsecond=0),
        )
        if answered:
            answer["bod"] = answered
        return answer

    def _queue_read_events(self, after_id=0):
        backend = self.backend_id
        # Before the processing jobs it queues (priority), as the backend's integration user.
        self.with_user(backend.user_id).with_context(
            allowed_company_ids=backend.company_id.ids
        ).with_delay(
            description=f"MES: queue the events of {self.display_name}",
            identity_key=identity_exact,
            priority=1,
        )._queue_events(after_id)

    def _queue_events(self, after_id=0):
        """Queue the lanes of a slice of the events read from this document (job); the
        next slice is queued by the next run, until none is left."""
        self.ensure_one()
        events = self.sudo().search(
            [("parent_id", "=", self.id), ("state", "=", "received"), ("id", ">", after_id)],
            order="id",
            limit=QUEUE_SLICE,
        )
        events._enqueue_lanes()
        if len(events) == QUEUE_SLICE:
            self._queue_read_events(events[-1].id)
        return f"{len(events)} events queued"

    def _last_sequences(self, backend, order_refs):
        """Highest MES sequence stored per order reference, read under a lock on the
        backend's B2MML numbering, so that two documents are numbered one after the other
        (one lock and one query for a document, however many orders it reports on).

        This request's transaction reads a snapshot taken before it waited for the lock:
        what another document committed meanwhile is read by a cursor of its own, which
        sees every committed number (this transaction's own, none yet, are read too).
        """
        self.env.cr.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"mes:b2mml:{backend.id}",)
        )
        refs = [ref for ref in order_refs if ref]
        if not refs:
            return {}
        query = (
            "SELECT order_ref, COALESCE(MAX(sequence), 0) FROM mes_message"
            " WHERE backend_id = %s AND direction = 'inbound' AND order_ref = ANY(%s)"
            " GROUP BY order_ref"
        )
        self.env.cr.execute(query, (backend.id, refs))
        last = dict(self.env.cr.fetchall())
        with self.env.registry.cursor() as committed:
            committed.execute(query, (backend.id, refs))
            for ref, sequence in committed.fetchall():
                last[ref] = max(last.get(ref, 0), sequence)
        return last

    def _find_inbound(self, backend, external_ids):
        """The inbound messages of ``backend`` with these MES ids (one id, or a set)."""
        if isinstance(external_ids, str):
            external_ids = [external_ids]
        if not external_ids:
            return self.browse()
        # Each id looked up in the index of the ids, one after the other (OFFSET 0 keeps
        # the lookup per id), then kept for this backend: whatever the table's statistics
        # say. Never gathered (autovacuum off), they let PostgreSQL believe a batch's 500
        # ids match most of a million rows and read them all, or compile the query (JIT)
        # for longer than the lookups take.
        self.flush_model(["external_id", "backend_id", "direction"])
        if len(external_ids) == 1:
            self.env.cr.execute(
                """
                SELECT m.id FROM (SELECT id, backend_id, direction FROM mes_message
                                   WHERE external_id = %s OFFSET 0) m
                 WHERE m.backend_id = %s AND m.direction = 'inbound'
                """,
                (next(iter(external_ids)), backend.id),
            )
            return self.sudo().browse([row[0] for row in self.env.cr.fetchall()])
        self.env.cr.execute("SET LOCAL jit = off")
        self.env.cr.execute(
            """
            SELECT m.id FROM unnest(%s::varchar[]) AS k(external_id)
             CROSS JOIN LATERAL (
                   SELECT id, backend_id, direction FROM mes_message
                    WHERE external_id = k.external_id OFFSET 0) m
             WHERE m.backend_id = %s AND m.direction = 'inbound'
            """,
            (list(external_ids), backend.id),
        )
        return self.sudo().browse([row[0] for row in self.env.cr.fetchall()])
