"""Master data the MES holds: one row per backend and MES identity (a material, an
equipment, a bill of materials, a lot), with the last revision Odoo wrote for it.

Each revision is a whole document (the MES keeps the latest it got), written as an
outbound message in the transaction that changed what the MES must know, and delivered
by its queue job like an order revision. Orders, and bills of materials, wait for the
master data they name until the MES has acknowledged it.
"""

import json
import logging
from datetime import UTC

from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from mes_connector import bod
from mes_connector.b2mml_master import master_data_to_b2mml
from mes_connector.exceptions import MessageValidationError
from mes_connector.idempotency import master_data_idempotency_key
from mes_connector.master_data import validate_master_data

_logger = logging.getLogger(__name__)

KINDS = [
    ("material", "Material"),
    ("equipment", "Equipment"),
    ("bom", "Bill of materials"),
    ("lot", "Material lot"),
]
# The Odoo record of each kind, and the type of the messages that carry it.
KIND_FIELD = {
    "material": "product_id",
    "equipment": "workcenter_id",
    "bom": "bom_id",
    "lot": "lot_id",
}
KIND_MODEL = {
    "material": "product.product",
    "equipment": "mrp.workcenter",
    "bom": "mrp.bom",
    "lot": "stock.lot",
}
KIND_MESSAGE_TYPE = {
    "material": "master_material",
    "equipment": "master_equipment",
    "bom": "master_bom",
    "lot": "master_lot",
}
MESSAGE_KIND = {value: key for key, value in KIND_MESSAGE_TYPE.items()}
# What the queue_job priority of each kind is: what others name goes first.
KIND_PRIORITY = {"material": 5, "equipment": 5, "lot": 8, "bom": 9}
MESSAGE_STATE = {
    "pending": "pending",
    "sent": "pending",
    "acknowledged": "known",
    "rejected": "refused",
    "failed": "failed",
}
# The precommit data key of the records whose documents may have changed.
CHANGED_KEY = "mes_base.master_data_changed"


def schedule_master_data_check(records, kind):
    """Note Odoo records whose MES document may have changed; compared once, at commit,
    with what each MES holds (many writes of one save make one revision, an unrelated
    write none)."""
    if not records:
        return
    precommit = records.env.cr.precommit
    pending = precommit.data.setdefault(CHANGED_KEY, {})
    if not pending:
        precommit.add(records.env["mes.master.data"].sudo()._check_changed_at_commit)
    pending.setdefault(kind, set()).update(records.ids)


class MesMasterData(models.Model):
    _name = "mes.master.data"
    _description = "MES master data"
    _order = "backend_id, kind, code"
    _rec_name = "code"

    backend_id = fields.Many2one("mes.backend", "MES", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="backend_id.company_id", store=True)
    kind = fields.Selection(KINDS, required=True)
    code = fields.Char(
        "MES code",
        required=True,
        help="How the MES knows it: the product's Internal Reference, the work center's "
        "Code, the bill of materials' key, a lot's product and number.",
    )
    name = fields.Char(readonly=True)
    product_id = fields.Many2one("product.product", index="btree_not_null", ondelete="set null")
    workcenter_id = fields.Many2one(
        "mrp.workcenter", "Work center", index="btree_not_null", ondelete="set null"
    )
    bom_id = fields.Many2one(
        "mrp.bom", "Bill of materials", index="btree_not_null", ondelete="set null"
    )
    lot_id = fields.Many2one("stock.lot", index="btree_not_null", ondelete="set null")
    revision = fields.Integer(readonly=True, help="The last revision Odoo wrote for the MES.")
    acknowledged_revision = fields.Integer(
        "Revision the MES holds", readonly=True, help="The last revision the MES acknowledged."
    )
    document = fields.Text(
        readonly=True, help="The last revision written for the MES, without its number."
    )
    problem = fields.Char(
        readonly=True,
        help="Why the last change could not be written for the MES (fix it in Odoo: the next "
        "change is sent).",
    )
    message_ids = fields.One2many("mes.message", "master_data_id", "Revisions")
    state = fields.Selection(
        [
            ("new", "Not sent"),
            ("pending", "On its way"),
            ("known", "Known to the MES"),
            ("refused", "Refused by the MES"),
            ("failed", "Not delivered"),
            ("invalid", "Cannot be sent"),
        ],
        compute="_compute_state",
        store=True,
        index=True,
    )
    status_detail = fields.Char("Detail", compute="_compute_state", store=True)
    resync_id = fields.Many2one(
        "mes.master.resync", "Last resync", readonly=True, index="btree_not_null"
    )

    _sql_constraints = [
        (
            "code_unique",
            "unique (backend_id, kind, code)",
            "An MES knows one record of a kind per code.",
        )
    ]

    @api.depends("message_ids.state", "message_ids.error_text", "problem")
    def _compute_state(self):
        for record in self:
            latest = record.message_ids.filtered(lambda m: m.state != "cancelled").sorted(
                "revision", reverse=True
            )[:1]
            if record.problem:
                record.state, record.status_detail = "invalid", record.problem
            elif latest:
                record.state = MESSAGE_STATE.get(latest.state, "pending")
                record.status_detail = (
                    latest.error_text if latest.state in ("rejected", "failed") else False
                )
            else:
                record.state = "known" if record.acknowledged_revision else "new"
                record.status_detail = False

    @api.depends("kind", "code")
    def _compute_display_name(self):
        labels = dict(self._fields["kind"]._description_selection(self.env))
        for record in self:
            record.display_name = f"{labels.get(record.kind, '')} {record.code}".strip()

    # What the MES needs: found or created, written when it changed

    @api.model
    def _ensure(self, backend, kind, odoo_records, resync=None):
        """The master data of ``odoo_records`` on ``backend``, each written for the MES if
        it never was or changed since (``resync``: written again once in that run), with
        what each names (a bill of materials names products and work centers). Raises
        UserError when a record cannot be described to the MES."""
        result = self.browse()
        for odoo_record in odoo_records:
            company = odoo_record.company_id if "company_id" in odoo_record._fields else None
            if company and company != backend.company_id:
                raise UserError(
                    self.env._(
                        "%(record)s belongs to %(company)s: the MES of %(other)s does not get it.",
                        record=odoo_record.display_name,
                        company=company.name,
                        other=backend.company_id.name,
                    )
                )
            needs = self.browse()
            for need_kind, needed in odoo_record._mes_master_data_needs():
                needs |= self._ensure(backend, need_kind, needed, resync=resync)
            record = self._for(backend, kind, odoo_record)
            document = odoo_record._mes_master_document(backend)
            record._write_revision(document, needs=needs, resync=resync)
            result |= record | needs
        return result

    def _for(self, backend, kind, odoo_record):
        """The row of ``odoo_record`` (created if new); a changed MES code retires the
        old one (the MES is told it is no longer active) and starts a new one."""
        field = KIND_FIELD[kind]
        code = odoo_record._mes_master_code()
        record = self.search(
            [("backend_id", "=", backend.id), ("kind", "=", kind), (field, "=", odoo_record.id)],
            order="id desc",
        )
        for old in record.filtered(lambda r: r.code != code):
            old._retire()
        record = record.filtered(lambda r: r.code == code)
        if record:
            return record[:1]
        holder = self.search(
            [("backend_id", "=", backend.id), ("kind", "=", kind), ("code", "=", code)], limit=1
        )
        if holder:
            live = holder[field]
            if live and live != odoo_record and live.exists() and holder._live():
                raise UserError(
                    self.env._(
                        "%(this)s and %(other)s both go to the MES as %(kind)s %(code)s: the "
                        "MES knows one per code. Give one of them another code.",
                        this=odoo_record.display_name,
                        other=live.display_name,
                        kind=dict(KINDS)[kind].lower(),
                        code=code,
                    )
                )
            # A code set free (its record renamed or deleted) is taken by this one.
            holder.write({field: odoo_record.id, "name": odoo_record.display_name})
            return holder
        try:
            with self.env.cr.savepoint():
                return self.create(
                    {
                        "backend_id": backend.id,
                        "kind": kind,
                        "code": code,
                        field: odoo_record.id,
                        "name": odoo_record.display_name,
                    }
                )
        except pg_errors.UniqueViolation:
            # Another transaction, committed after this one began or not yet, wrote the
            # row: PostgreSQL says so as a serialization failure, which the request (or
            # the job) is tried again for, then seeing the row.
            self.env.cr.execute(
                SQL(
                    "INSERT INTO mes_master_data (backend_id, kind, code) VALUES (%s, %s, %s) "
                    "ON CONFLICT (backend_id, kind, code) DO NOTHING",
                    backend.id,
                    kind,
                    code,
                )
            )
            raise

    def _live(self):
        """Whether the MES was last told this record is in use (a lot: released)."""
        self.ensure_one()
        if not self.document:
            return False
        document = json.loads(self.document)
        if self.kind == "lot":
            return document.get("status") == "released"
        return document.get("active", True)

    def _retire(self):
        """The Odoo record behind this code is gone, has another code now or left this
        MES's company: the MES is told, in one last revision, that it is no longer in use
        (a lot: on hold, never consumed again)."""
        for record in self.filtered(lambda r: r.document and r._live()):
            document = json.loads(record.document)
            if record.kind == "lot":
                document["status"] = "hold"
            else:
                document["active"] = False
            record._write_revision(document)

    def _write_revision(self, document, needs=None, resync=None):
        """Write the next revision of this record for the MES if ``document`` differs from
        the last one written (or a resync wants it again); returns the message or None."""
        self.ensure_one()
        if resync and self.resync_id == resync:
            return None  # written by this run already (a restarted run goes on after it)
        written = json.loads(self.document) if self.document else None
        if written == document and not resync:
            if self.problem:
                self.problem = False
            return None
        backend = self.backend_id
        revision = self.revision + 1
        full = dict(document, revision=revision)
        try:
            validate_master_data(full)
            xml = master_data_to_b2mml(full) if backend.payload_format == "b2mml" else None
        except MessageValidationError as err:
            raise UserError(
                self.env._(
                    "%(record)s cannot be sent to the MES: %(err)s",
                    record=self.display_name,
                    err=err,
                )
            ) from err
        uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        key = master_data_idempotency_key(f"{uuid}/{backend.code}", self.kind, self.code, revision)
        if xml:
            payload = xml
            if backend.b2mml_transaction:
                payload = bod.wrap(
                    payload,
                    "Sync",
                    sender=backend.b2mml_logical_id,
                    bod_id=key,
                    created=fields.Datetime.now().replace(microsecond=0, tzinfo=UTC),
                )
            payload, payload_format = payload.decode(), "xml"
        else:
            payload, payload_format = json.dumps(full, indent=2, ensure_ascii=False), "json"
        self.write(
            {
                "revision": revision,
                "document": json.dumps(document, sort_keys=True),
                "problem": False,
                "resync_id": resync.id if resync else self.resync_id.id,
            }
        )
        # Two transactions writing the same revision meet on this row (a serialization
        # failure, tried again), not on the message's unique key.
        self.flush_recordset(["revision"])
        message = (
            self.env["mes.message"]
            .sudo()
            .with_context(tracking_disable=True, mail_create_nolog=True)
            .create(
                {
                    "backend_id": backend.id,
                    "direction": "outbound",
                    "message_type": KIND_MESSAGE_TYPE[self.kind],
                    "external_id": key,
                    "master_data_id": self.id,
                    "revision": revision,
                    "payload": payload,
                    "payload_format": payload_format,
                    "state": "pending",
                    "product_id": self.product_id.id or self.lot_id.product_id.id,
                    "workcenter_id": self.workcenter_id.id,
                    "reported_lot": self.lot_id.name if self.kind == "lot" else False,
                    "needs_master_data_ids": [fields.Command.set((needs or self.browse()).ids)],
                    "resync_id": resync.id if resync else False,
                }
            )
        )
        # Delivered once this transaction is committed (its job is in it too).
        message._enqueue()
        return message

    # Changes of what the MES knows

    @api.model
    def _check_changed_at_commit(self):
        """Compare the noted records' documents with what each MES holds; a record that
        cannot be described any more is marked so (the save that changed it stands)."""
        changed = self.env.cr.precommit.data.pop(CHANGED_KEY, {})
        if "bom" in changed:
            # The MES never gets a kit: the bills it is exploded in change with it.
            kits = self.env["mrp.bom"].with_context(active_test=False).browse(changed["bom"])
            changed["bom"] |= set(kits.exists()._mes_kit_users().ids)
        for kind, ids in changed.items():
            records = self.search(
                [
                    (KIND_FIELD[kind], "in", list(ids)),
                    ("kind", "=", kind),
                    ("backend_id.master_data_enabled", "=", True),
                ]
            )
            for record in records:
                record._refresh()

    def _refresh(self):
        """Write a revision if the Odoo record changed what the MES must know."""
        self.ensure_one()
        odoo_record = self[KIND_FIELD[self.kind]]
        company = (
            odoo_record.company_id
            if odoo_record.exists() and "company_id" in odoo_record._fields
            else None
        )
        if not odoo_record.exists() or (company and company != self.backend_id.company_id):
            self._retire()
            return
        self._ensure_noted(self.backend_id, self.kind, odoo_record, row=self)

    @api.model
    def _ensure_noted(self, backend, kind, odoo_records, row=None):
        """``_ensure`` at commit of a change: what cannot be described to the MES is noted
        on its row (and logged), never a reason to refuse the change in Odoo."""
        for odoo_record in odoo_records:
            try:
                with self.env.cr.savepoint():
                    self._ensure(backend, kind, odoo_record)
            except UserError as err:
                _logger.info("MES master data of %s not written: %s", odoo_record, err)
                if row:
                    row.problem = str(err)[:500]

    # Delivery

    def _missing(self):
        """Those of these records the MES does not know yet."""
        return self.filtered(lambda r: r.acknowledged_revision < 1)

    def _waiting_text(self):
        """What these missing records are waiting for, as a planner reads it."""
        labels = dict(self._fields["kind"]._description_selection(self.env))
        parts = []
        # What needs someone first.
        for record in self.sorted(lambda r: r.state not in ("refused", "failed", "invalid")):
            name = f"{labels[record.kind].lower()} {record.code}"
            why = (record.status_detail or "-").split("\n")[0]
            if record.state == "refused":
                parts.append(
                    self.env._("%(name)s refused by the MES (%(why)s)", name=name, why=why)
                )
            elif record.state in ("failed", "invalid"):
                parts.append(self.env._("%(name)s not delivered (%(why)s)", name=name, why=why))
            elif record.state == "new":
                parts.append(self.env._("%s not sent (its revision was cancelled)", name))
            else:
                parts.append(self.env._("%s on its way", name))
        return self.env._("Waits for its master data: %s.", "; ".join(parts))

    def _waiting_messages(self):
        """Outbound messages not sent yet that need these records."""
        return (
            self.env["mes.message"]
            .sudo()
            .search(
                [
                    ("needs_master_data_ids", "in", self.ids),
                    ("direction", "=", "outbound"),
                    ("state", "=", "pending"),
                ]
            )
        )

    def _revision_withdrawn(self, message):
        """A planner cancelled a revision before the MES took it: the next change, or the
        next order naming the record, writes it again."""
        for record in self:
            if message.revision == record.revision and not record.message_ids.filtered(
                lambda m, r=message: m.state == "acknowledged" and m.revision > r.revision
            ):
                record.document = False

    def _check_nothing_waits(self, cancelled):
        """A revision that messages not cancelled with it wait for stays: it is the MES's
        only way to learn the record, and they would wait for it forever."""
        waiting = self._waiting_messages() - cancelled
        if waiting:
            raise UserError(
                self.env._(
                    "%(waiting)s wait for %(records)s: retry its revision, or cancel them with it.",
                    waiting=", ".join(waiting[:10].mapped("display_name")),
                    records=", ".join(self.mapped("display_name")),
                )
            )

    def _acknowledged(self, message):
        """The MES holds ``message``'s revision: what waited for this record goes on."""
        for record in self:
            if message.revision > record.acknowledged_revision:
                record.acknowledged_revision = message.revision
        self._wake_waiting()

    def _wake_waiting(self):
        """Outbound messages waiting for these records whose master data is all known now
        are tried at once instead of at their next planned try."""
        waiting = self._waiting_messages()
        ready = waiting.filtered(lambda m: not m.needs_master_data_ids._missing())
        ready._enqueue(now=True)
