import logging
from collections import defaultdict
from datetime import datetime, time, timedelta

import pytz
from psycopg2 import OperationalError
from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import float_is_zero, float_round, mute_logger

from odoo.addons.mes_base.exceptions import MesDataError

_logger = logging.getLogger(__name__)

STATUSES = [
    ("pending", "Pending"),
    ("balanced", "Balanced"),
    ("tolerance", "Within tolerance"),
    ("variance", "Variance"),
]
STATUS_RANK = {"balanced": 0, "tolerance": 1, "variance": 2, "pending": 3}
KIND_SEQUENCE = {
    "output": 1,
    "byproduct": 2,
    "component": 3,
    "scrap": 4,
    "rework": 5,
    "time": 6,
    "labor": 7,
}
# Kinds counted in hours (work center time, operator labor).
HOUR_KINDS = ("time", "labor")
OPEN_INBOUND = ("received", "waiting", "error")
# Time is compared in hours, to a few seconds: MES and Odoo keep start and end times to
# the second, so each time log may differ by up to a second from the minutes reported.
TIME_ROUNDING = 10 / 3600
TIME_DIGITS = 6
# Changes dated up to this long before a refresh may not have been visible to it.
REFRESH_MARGIN = timedelta(minutes=10)


def company_tz(company, user):
    """The zone a company's days are counted in (its address's, else the user's)."""
    return pytz.timezone(company.partner_id.tz or user.tz or "UTC")


def local_date(moment, tz):
    """The local day of a naive UTC datetime."""
    return pytz.utc.localize(moment).astimezone(tz).date()


def utc_start(day, tz):
    """When a local day starts, as a naive UTC datetime."""
    return tz.localize(datetime.combine(day, time.min)).astimezone(pytz.utc).replace(tzinfo=None)


class MesReconciliation(models.Model):
    """Planned, MES-reported and Odoo-posted quantities of one manufacturing order.

    Kept up to date by a scheduled refresh (orders whose messages, moves or time logs
    changed since the last one) and on demand; its lines are what finance pivots by
    period, product, work center and plant.
    """

    _name = "mes.reconciliation"
    _description = "MES reconciliation of a manufacturing order"
    _inherit = ["mail.thread"]
    _order = "date desc, id desc"
    _rec_name = "production_id"

    production_id = fields.Many2one(
        "mrp.production", "Manufacturing order", required=True, ondelete="cascade", readonly=True
    )
    company_id = fields.Many2one(
        related="production_id.company_id", store=True, index=True, readonly=True
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    backend_id = fields.Many2one("mes.backend", "MES", readonly=True, index=True)
    product_id = fields.Many2one(related="production_id.product_id", store=True, index=True)
    warehouse_id = fields.Many2one("stock.warehouse", "Plant", readonly=True, index=True)
    date = fields.Date(
        "Period date",
        readonly=True,
        index=True,
        help="The day the order was finished (planned start while it is not), in the "
        "company's time zone.",
    )
    production_state = fields.Selection(
        related="production_id.state", string="Order state", store=True
    )
    mes_owned = fields.Boolean(
        "MES owns material", readonly=True, help="Only MES reports may post material."
    )
    status = fields.Selection(STATUSES, readonly=True, index=True, tracking=True)
    unmatched = fields.Boolean(
        "Postings without MES report",
        readonly=True,
        index=True,
        help="Odoo holds postings no MES message stands for (manual changes).",
    )
    line_ids = fields.One2many("mes.reconciliation.line", "reconciliation_id", readonly=True)
    pending_messages = fields.Integer("Messages not posted", readonly=True)
    posted_value = fields.Monetary(readonly=True, currency_field="currency_id")
    variance_value = fields.Monetary(
        "Variance value (posted - reported)", readonly=True, currency_field="currency_id"
    )
    usage_variance_value = fields.Monetary(
        "Usage variance value (reported - planned)", readonly=True, currency_field="currency_id"
    )
    explanation = fields.Text(tracking=True)
    explained_by_id = fields.Many2one("res.users", "Explained by", readonly=True)
    explained_at = fields.Datetime(readonly=True)
    needs_explanation = fields.Boolean(
        compute="_compute_needs_explanation",
        store=True,
        index=True,
        help="A variance above tolerance, or postings without MES report, not explained yet.",
    )
    computed_at = fields.Datetime("Refreshed at", readonly=True)
    refresh_error = fields.Char(
        "Could not be computed",
        readonly=True,
        help="Why the last refresh of this order failed; the order stays pending until a "
        "refresh succeeds. Other orders are computed meanwhile.",
    )

    _sql_constraints = [
        ("production_unique", "unique(production_id)", "One reconciliation per order."),
    ]

    def init(self):
        # The scheduled refresh looks for orders with messages changed since their last one.
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS mes_message_production_write_date_idx
                ON mes_message (production_id, write_date)
             WHERE production_id IS NOT NULL
            """
        )

    @api.depends("status", "unmatched", "explanation")
    def _compute_needs_explanation(self):
        for record in self:
            record.needs_explanation = bool(
                (record.status == "variance" or record.unmatched)
                and not (record.explanation or "").strip()
            )

    def write(self, vals):
        if not self.env.su and set(vals) - {"explanation"}:
            # The figures come from the refresh only; people write the explanation.
            raise AccessError(
                self.env._("Only the explanation of a reconciliation can be changed.")
            )
        if "explanation" in vals:
            vals = dict(
                vals,
                explained_by_id=self.env.uid if vals["explanation"] else False,
                explained_at=fields.Datetime.now() if vals["explanation"] else False,
            )
        return super().write(vals)

    # Refresh

    def action_refresh(self):
        self.check_access("read")
        self.sudo()._recompute()
        return True

    def action_refresh_list(self):
        """The list's Refresh: the selected orders, or without a selection every order of
        the user's companies that changed since it was last reconciled (what the
        scheduled refresh does every 30 minutes), now."""
        self.check_access("read")
        if self:
            self.sudo()._recompute()
            count = len(self)
        else:
            companies = self.env.companies
            productions = (
                self.sudo()
                ._refresh_candidates(limit=5000)
                .filtered(lambda p: p.company_id in companies)
            )
            self.sudo()._refresh_productions(productions)
            count = len(productions)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": self.env._("%s order(s) brought up to date.", count),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    @api.model
    def _refresh_productions(self, productions):
        """Create or bring up to date the reconciliation of each order."""
        existing = self.search([("production_id", "in", productions.ids)])
        by_production = {record.production_id: record for record in existing}
        missing = productions.filtered(lambda p: p not in by_production)
        records = existing | self._create_missing(missing)
        records._recompute()
        return records

    @api.model
    def _create_missing(self, productions):
        """The reconciliations of these orders, created; an order whose reconciliation a
        concurrent refresh created meanwhile (not visible to this transaction) is left to
        that refresh instead of failing the whole run on the unique constraint."""
        vals_list = [{"production_id": p.id} for p in productions]
        try:
            with mute_logger("odoo.sql_db"), self.env.cr.savepoint():
                return self.create(vals_list)
        except pg_errors.UniqueViolation:
            _logger.info("MES reconciliation: another refresh runs; creating one order at a time")
        created = self.browse()
        for vals in vals_list:
            try:
                with mute_logger("odoo.sql_db"), self.env.cr.savepoint():
                    created |= self.create(vals)
            except pg_errors.UniqueViolation:
                _logger.info(
                    "MES reconciliation of order %s is being created by another refresh",
                    vals["production_id"],
                )
        return created

    @api.model
    def _cron_refresh(self, limit=500):
        """Refresh the orders whose MES messages, stock moves or time logs changed since."""
        productions = self._refresh_candidates(limit)
        if productions:
            self._refresh_productions(productions)
        return productions

    @api.model
    def _refresh_candidates(self, limit=500):
        """Orders whose MES messages, stock moves or time logs changed since their last refresh.

        A change is dated by its transaction's start, which may be before a refresh that did
        not see it yet (not committed): changes up to ``REFRESH_MARGIN`` before the last
        refresh count as new, so such an order is refreshed once more.
        """
        self.env.flush_all()
        self.env.cr.execute(
            """
            SELECT p.id
              FROM mrp_production p
              LEFT JOIN mes_reconciliation r ON r.production_id = p.id
             WHERE (p.mes_state IS NOT NULL AND p.mes_state != 'not_sent'
                    OR EXISTS (SELECT 1 FROM mes_message m
                                WHERE m.production_id = p.id AND m.direction = 'inbound'))
               AND (r.id IS NULL
                    OR p.write_date > r.computed_at - %(margin)s
                    OR EXISTS (SELECT 1 FROM mes_message m
                                WHERE m.production_id = p.id
                                  AND m.write_date > r.computed_at - %(margin)s)
                    OR EXISTS (SELECT 1 FROM stock_move sm
                                WHERE (sm.raw_material_production_id = p.id
                                       OR sm.production_id = p.id)
                                  AND sm.write_date > r.computed_at - %(margin)s)
                    OR EXISTS (SELECT 1 FROM mrp_workcenter_productivity wp
                                 JOIN mrp_workorder wo ON wo.id = wp.workorder_id
                                WHERE wo.production_id = p.id
                                  AND wp.write_date > r.computed_at - %(margin)s))
             ORDER BY p.id
             LIMIT %(limit)s
            """,
            {"margin": REFRESH_MARGIN, "limit": limit},
        )
        return self.env["mrp.production"].browse([row[0] for row in self.env.cr.fetchall()])

    def _recompute(self):
        """Recompute each order on its own: one order that cannot be computed (a defect, data
        Odoo cannot value) is marked with the reason and does not stop the others."""
        for record in self:
            try:
                with self.env.cr.savepoint():
                    record._recompute_one()
            except OperationalError:
                raise  # a lock or serialization conflict: the whole run is tried again
            except Exception as err:
                _logger.exception("MES reconciliation of %s failed", record.production_id.name)
                record.write(
                    {
                        "status": "pending",
                        "refresh_error": f"{type(err).__name__}: {err}"[:500],
                        "computed_at": fields.Datetime.now(),
                    }
                )

    def _recompute_one(self):
        production = self.production_id
        backend = self.env["mes.message"].search(
            [("production_id", "=", production.id)], limit=1
        ).backend_id or self.env["mes.backend"]._for_production(production)
        computer = _Computation(self, production, backend)
        lines = computer.lines()
        self.line_ids.unlink()
        self.env["mes.reconciliation.line"].create(lines)
        statuses = [line["status"] for line in lines]
        if production.state not in ("done", "cancel") or computer.pending_messages:
            status = "pending"
        else:
            status = max(statuses, key=STATUS_RANK.get) if statuses else "balanced"
        self.write(
            {
                "backend_id": backend.id,
                "warehouse_id": production.picking_type_id.warehouse_id.id,
                # The company's local day, as accounting counts it.
                "date": local_date(
                    production.date_finished
                    if production.state == "done"
                    else production.date_start,
                    company_tz(production.company_id, self.env.user),
                ),
                "mes_owned": computer.mes_owned,
                "status": status,
                "unmatched": any(line["unmatched"] for line in lines),
                "pending_messages": computer.pending_messages,
                "posted_value": sum(line["posted_value"] for line in lines),
                "variance_value": sum(line["variance_value"] for line in lines),
                "usage_variance_value": sum(line["usage_variance_value"] for line in lines),
                "computed_at": fields.Datetime.now(),
                "refresh_error": False,
            }
        )

    # Daily digest

    @api.model
    def _cron_send_digest(self):
        """Each backend's digest recipients get the variances of the last day and what is open."""
        self._cron_refresh(limit=5000)
        since = fields.Datetime.now() - timedelta(days=1)
        sent = 0
        for backend in self.env["mes.backend"].search([("digest_user_ids", "!=", False)]):
            mine = [("backend_id", "=", backend.id)]
            new = self.search(
                [
                    *mine,
                    ("computed_at", ">=", since),
                    "|",
                    ("status", "=", "variance"),
                    ("unmatched", "=", True),
                ],
            ).sorted(lambda r: -abs(r.variance_value))[:100]
            unexplained = self.search([*mine, ("needs_explanation", "=", True)], limit=100)
            pending = self.search(
                [*mine, ("status", "=", "pending"), ("production_state", "=", "done")], limit=100
            )
            if not (new or unexplained or pending):
                continue
            body = self.env["ir.qweb"]._render(
                "mes_reconciliation.mes_variance_digest",
                {
                    "backend": backend,
                    "new": new,
                    "unexplained": unexplained,
                    "unexplained_count": self.search_count(
                        [*mine, ("needs_explanation", "=", True)]
                    ),
                    "pending": pending,
                    "currency": backend.company_id.currency_id,
                },
            )
            self.env["mail.mail"].sudo().create(
                {
                    "subject": self.env._(
                        "MES variances, %(backend)s: %(new)s new, %(open)s to explain",
                        backend=backend.name,
                        new=len(new),
                        open=self.search_count([*mine, ("needs_explanation", "=", True)]),
                    ),
                    "body_html": body,
                    "recipient_ids": [(6, 0, backend.digest_user_ids.partner_id.ids)],
                    "auto_delete": True,
                }
            )
            sent += 1
        return sent

    def action_view_messages(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.production_id.name,
            "res_model": "mes.message",
            "views": [[False, "list"], [False, "form"]],
            "domain": [("production_id", "=", self.production_id.id)],
        }


class _Computation:
    """The lines of one order's reconciliation (plain Python over one order's records)."""

    def __init__(self, record, production, backend):
        self.env = record.env
        self.record = record
        self.production = production
        self.backend = backend
        self.company = production.company_id
        self.mes_owned = backend.consumption_owner == "mes" if backend else False
        self.buckets = defaultdict(
            lambda: {
                "planned": 0.0,
                "reported": 0.0,
                "pending": 0.0,
                "posted": 0.0,
                "unmatched": 0.0,
            }
        )
        self.pending_messages = 0
        # Work centers the MES reports time for (else Odoo's own time is not reconciled)
        self.timed_workcenters = set()
        # (kind, product) -> [value, quantity] of the valuation layers of what was posted
        self.costs = {}
        self.messages = self.env["mes.message"].search(
            [
                ("direction", "=", "inbound"),
                ("state", "!=", "cancelled"),
                "|",
                "|",
                "|",
                ("production_id", "=", production.id),
                # A report of several serial units posts on the orders of each, a rework
                # report under the orders that made what it reworked.
                ("move_ids", "in", production.move_finished_ids.ids),
                ("rework_ids.production_id", "=", production.id),
                "&",
                ("order_ref", "=", production.name),
                ("company_id", "=", self.company.id),
            ],
            order="sequence, occurred_at, id",
        )
        # The finished serials this order posted.
        self.units = set(
            production.move_finished_ids.filtered(
                lambda m: m.state == "done" and m.product_id == production.product_id
            ).move_line_ids.lot_id.mapped("name")
        )

    # Keys: (kind, product id, MES code, lot, work center id)

    def _lot_key(self, product, lot_name):
        if not product or product.tracking == "none":
            return ""
        return lot_name or ""

    def _kind_of(self, product):
        return "output" if product == self.production.product_id else "byproduct"

    def _to_product_uom(self, message, product, quantity=None, uom_code=None):
        """A message's quantity (or ``quantity`` in ``uom_code``) in the product's unit;
        None if its unit cannot be read."""
        if not product:
            return None
        if uom_code is None:
            quantity, uom_code = message.reported_quantity, message.reported_uom
        try:
            uom = self.env["mes.event.processor"]._uom(message, uom_code, product, "")
        except MesDataError:  # unmapped, or of another category: left unconverted
            return None
        return uom._compute_quantity(quantity, product.uom_id, rounding_method="HALF-UP")

    def _report(self, message):
        kind = {
            "material_consumed": "component",
            "scrap_reported": "scrap",
            "rework_completed": "rework",
            "output_produced": None,
            "operation_progress": "time",
            "operation_completed": "time",
        }.get(message.message_type, False)
        if kind is False:
            return
        if kind == "time":
            key = ("time", False, False, "", message.workcenter_id.id)
            quantity = message.reported_minutes / 60.0
            self.timed_workcenters.add(message.workcenter_id.id)
            self._report_labor(message)
        else:
            product = message.product_id
            kind = kind or (self._kind_of(product) if product else "output")
            data = message._event_data()
            if kind == "output" and product.tracking == "serial":
                self._report_units(message, product, data.get("serials") or [])
            elif kind == "rework" and message.rework_ids:
                # Out of rework: what of it this order made.
                for rework in message.rework_ids.filtered(
                    lambda r: r.production_id == self.production
                ):
                    key = (
                        "rework",
                        product.id,
                        False,
                        self._lot_key(product, rework.lot_id.name),
                        False,
                    )
                    self._add_report(message, key, rework.quantity)
            else:
                self._report_material(message, kind, product, data)
            if kind == "output" and message.production_id == self.production:
                # What went into the unit, reported with it (the parts replaced in rework
                # are the rework's cost).
                processor = self.env["mes.event.processor"]
                for component in data.get("components") or []:
                    try:
                        part = processor._product(message, component["product"], "")
                    except MesDataError:
                        part = self.env["product.product"]
                    self._report_material(message, "component", part, component)
            return
        self._add_report(message, key, quantity)

    def _report_labor(self, message):
        """The operators an operation report names, and their hours, per work center."""
        processor = self.env["mes.event.processor"]
        for item in message._event_data().get("operators") or []:
            try:
                label = processor._operator(message, item["operator"], "").sudo().name
            except MesDataError:
                label = item["operator"]
            key = ("labor", False, False, label, message.workcenter_id.id)
            self._add_report(message, key, item["minutes"] / 60.0)

    def _add_report(self, message, key, quantity):
        bucket = self.buckets[key]
        bucket["reported"] += quantity
        if message.state in OPEN_INBOUND:
            bucket["pending"] += quantity

    def _report_material(self, message, kind, product, data):
        """A reported quantity of ``product`` (``data``: quantity, uom, lot or serials)."""
        quantity = self._to_product_uom(message, product, data["quantity"], data["uom"])
        if quantity is None:
            code = f"{data.get('product')} ({data['uom']})"
            self._add_report(
                message, (kind, False, code, data.get("lot") or "", False), data["quantity"]
            )
            return
        serials = data.get("serials") if product.tracking == "serial" else None
        if serials:
            for serial in serials:
                self._add_report(
                    message, (kind, product.id, False, serial, False), quantity / len(serials)
                )
            return
        key = (kind, product.id, False, self._lot_key(product, data.get("lot")), False)
        self._add_report(message, key, quantity)

    def _report_units(self, message, product, serials):
        """Finished serial units, one line each, on the order that posted it; a report
        not posted yet, on the order it waits on."""
        if message.state in OPEN_INBOUND:
            here = serials if message.production_id == self.production else []
        else:
            here = [serial for serial in serials if serial in self.units]
        for serial in here:
            self._add_report(message, ("output", product.id, False, serial, False), 1.0)

    def _report_completion(self):
        """A completion with a quantity is the order's total good output."""
        production = self.production
        completions = self.messages.filtered(
            lambda m: (
                m.message_type == "order_completed"
                and m.reported_quantity
                and m.production_id == production
            )
        )
        # Serial units are reported one by one with their serials, not by a count.
        if not completions or production.product_id.tracking == "serial":
            return
        completion = completions[-1]
        total = self._to_product_uom(completion, production.product_id)
        if total is None:
            return
        output_keys = [key for key in self.buckets if key[0] == "output" and key[1]]
        by_events = sum(self.buckets[key]["reported"] for key in output_keys)
        lot = self._lot_key(production.product_id, completion.reported_lot)
        if not lot and len(output_keys) == 1:
            lot = output_keys[0][3]
        bucket = self.buckets[("output", production.product_id.id, False, lot, False)]
        bucket["reported"] += total - by_events
        if completion.state in OPEN_INBOUND:
            bucket["pending"] += total - by_events

    def _post(self, kind, product, lot_name, quantity, unmatched):
        key = (kind, product.id, False, self._lot_key(product, lot_name), False)
        bucket = self.buckets[key]
        bucket["posted"] += quantity
        if unmatched:
            bucket["unmatched"] += quantity

    def _posted(self):
        production = self.production
        done_raw = production.move_raw_ids.filtered(lambda m: m.state == "done" and not m.scrap_id)
        for move in done_raw:
            for line in move.move_line_ids:
                self._post(
                    "component",
                    move.product_id,
                    line.lot_id.name,
                    line.quantity_product_uom,
                    self.mes_owned and not line.mes_message_id,
                )
            self._value(("component", move.product_id), move)
        done_finished = production.move_finished_ids.filtered(
            lambda m: m.state == "done" and not m.scrap_id
        )
        for move in done_finished:
            kind = self._kind_of(move.product_id)
            for line in move.move_line_ids:
                self._post(
                    kind,
                    move.product_id,
                    line.lot_id.name,
                    line.quantity_product_uom,
                    kind == "byproduct" and self.mes_owned and not line.mes_message_id,
                )
            self._value((kind, move.product_id), move)
        # What the MES reworked of this order's output: the units out of rework, at what
        # the rework cost (its scrap is the rework's, not the order's).
        reworks = self.env["mes.rework"].search(
            [("production_id", "=", production.id), ("state", "!=", "rework")]
        )
        for rework in reworks:
            key = (
                "rework",
                rework.product_id.id,
                False,
                self._lot_key(rework.product_id, rework.lot_id.name),
                False,
            )
            self.buckets[key]["posted"] += rework.quantity
            costs = self.costs.setdefault(("rework", rework.product_id), [0.0, 0.0])
            costs[0] += rework._cost()
            costs[1] += rework.quantity
        scraps = (
            self.env["stock.scrap"].search(
                [("production_id", "=", production.id), ("state", "=", "done")]
            )
            - reworks.scrap_ids
        )
        reported_scraps = self.messages.scrap_ids
        for scrap in scraps:
            quantity = scrap.product_uom_id._compute_quantity(
                scrap.scrap_qty, scrap.product_id.uom_id
            )
            self._post(
                "scrap", scrap.product_id, scrap.lot_id.name, quantity, scrap not in reported_scraps
            )
            self._value(("scrap", scrap.product_id), scrap.move_ids)
        for labor in self.env["mes.labor"].search([("production_id", "=", production.id)]):
            employee = labor.employee_id.sudo()
            key = ("labor", False, False, employee.name, labor.workcenter_id.id)
            self.buckets[key]["posted"] += labor.hours
            costs = self.costs.setdefault(("labor", labor.workcenter_id.id), [0.0, 0.0])
            costs[0] += labor.hours * employee.hourly_cost
            costs[1] += labor.hours
        logs = self.env["mrp.workcenter.productivity"].search(
            [("workorder_id", "in", production.workorder_ids.ids)]
        )
        reported_logs = self.messages.productivity_ids
        for log in logs:
            key = ("time", False, False, "", log.workcenter_id.id)
            hours = log.duration / 60.0
            self.buckets[key]["posted"] += hours
            if log not in reported_logs:
                self.buckets[key]["unmatched"] += hours

    def _value(self, kind_product, moves):
        """Unit cost of what was posted, from its valuation layers."""
        layers = moves.sudo().stock_valuation_layer_ids
        costs = self.costs.setdefault(kind_product, [0.0, 0.0])
        costs[0] += abs(sum(layers.mapped("value")))
        costs[1] += abs(sum(layers.mapped("quantity")))

    def _planned(self):
        production = self.production
        bom = production.bom_id
        output_qty = production.product_uom_id._compute_quantity(
            production.product_qty, production.product_id.uom_id
        )
        self.buckets[("output", production.product_id.id, False, "", False)]["planned"] += (
            output_qty
        )
        if bom:
            factor = (
                production.product_uom_id._compute_quantity(
                    production.product_qty, bom.product_uom_id
                )
                / bom.product_qty
            )
            _boms, lines = bom.explode(
                production.product_id, factor, picking_type=bom.picking_type_id
            )
            for bom_line, line_data in lines:
                if (
                    bom_line.child_bom_id and bom_line.child_bom_id.type == "phantom"
                ) or bom_line.product_id.type != "consu":
                    continue
                quantity = bom_line.product_uom_id._compute_quantity(
                    line_data["qty"], bom_line.product_id.uom_id
                )
                key = ("component", bom_line.product_id.id, False, "", False)
                self.buckets[key]["planned"] += quantity
            for byproduct in bom.byproduct_ids:
                if byproduct._skip_byproduct_line(production.product_id):
                    continue
                quantity = byproduct.product_uom_id._compute_quantity(
                    byproduct.product_qty * factor, byproduct.product_id.uom_id
                )
                key = ("byproduct", byproduct.product_id.id, False, "", False)
                self.buckets[key]["planned"] += quantity
        else:
            for move in production.move_raw_ids.filtered(lambda m: not m.scrap_id):
                key = ("component", move.product_id.id, False, "", False)
                self.buckets[key]["planned"] += move.product_qty
        for workorder in production.workorder_ids:
            key = ("time", False, False, "", workorder.workcenter_id.id)
            self.buckets[key]["planned"] += workorder.duration_expected / 60.0

    def lines(self):
        self._planned()
        for message in self.messages:
            if message.state in OPEN_INBOUND:
                self.pending_messages += 1
            self._report(message)
        self._report_completion()
        self._posted()
        # A lot-tracked product reads as one line (planned, reported, posted, usage and
        # values) with its lots below it as a breakdown (what was reported and posted
        # of each lot): one usage variance per product, not one per lot.
        groups = {}
        for (kind, product_id, code, lot, workcenter_id), bucket in self.buckets.items():
            groups.setdefault((kind, product_id, code, workcenter_id), {})[lot] = bucket
        lines = []
        for (kind, product_id, code, workcenter_id), by_lot in sorted(groups.items(), key=str):
            lots = sorted(lot for lot in by_lot if lot)
            if not lots:
                lines.append(self._line((kind, product_id, code, "", workcenter_id), by_lot[""]))
                continue
            total = {
                name: sum(bucket[name] for bucket in by_lot.values())
                for name in ("planned", "reported", "posted", "pending", "unmatched")
            }
            lines.append(self._line((kind, product_id, code, "", workcenter_id), total))
            for lot in lots:
                key = (kind, product_id, code, lot, workcenter_id)
                lines.append(self._line(key, by_lot[lot], lot_detail=True))
        return lines

    def _unit_cost(self, kind, product, workcenter):
        if kind == "time":
            return workcenter.costs_hour
        if kind == "labor":
            value, hours = self.costs.get(("labor", workcenter.id), (0.0, 0.0))
            return value / hours if hours else 0.0
        value, quantity = self.costs.get((kind, product), (0.0, 0.0))
        if quantity:
            return value / quantity
        return product.with_company(self.company).standard_price if product else 0.0

    def _line(self, key, bucket, lot_detail=False):
        """The values of one line; ``lot_detail``: one lot of a product's line, whose
        values (usage, cost) are the product line's, not added again."""
        kind, product_id, code, lot_name, workcenter_id = key
        product = self.env["product.product"].browse(product_id)
        workcenter = self.env["mrp.workcenter"].browse(workcenter_id)
        uom = product.uom_id if product else self.env.ref("uom.product_uom_hour")
        rounding = uom.rounding if kind not in HOUR_KINDS else TIME_ROUNDING
        digits = (
            TIME_DIGITS
            if kind in HOUR_KINDS
            else self.env["decimal.precision"].precision_get("Product Unit of Measure")
        )

        def qty(value):
            return float_round(value, precision_digits=digits)

        planned, reported, posted = (
            qty(bucket["planned"]),
            qty(bucket["reported"]),
            qty(bucket["posted"]),
        )
        pending, unmatched = qty(bucket["pending"]), qty(bucket["unmatched"])
        mes_reported = kind != "time" or workcenter_id in self.timed_workcenters
        if not mes_reported:
            # The MES says nothing of this work center's time: Odoo's time logs (its
            # expected durations when the order was closed) have nothing to be compared to.
            unmatched = 0.0
        variance = qty(posted - reported) if mes_reported else 0.0
        # Odoo plans no labor: nothing to measure its use against.
        usage = (
            qty(reported - planned) if mes_reported and not lot_detail and kind != "labor" else 0.0
        )
        unit_cost = self._unit_cost(kind, product, workcenter)
        currency = self.company.currency_id
        variance_value = currency.round(variance * unit_cost)
        status = self._status(variance, variance_value, reported, posted, pending, rounding)
        lot = self.env["stock.lot"]
        if lot_name and product:
            lot = lot.search(
                [
                    ("name", "=", lot_name),
                    ("product_id", "=", product.id),
                    ("company_id", "in", [False, self.company.id]),
                ],
                limit=1,
            )
        return {
            "reconciliation_id": self.record.id,
            "kind": kind,
            "kind_sequence": KIND_SEQUENCE[kind],
            "product_id": product.id or False,
            "mes_code": code or False,
            "lot_id": lot.id or False,
            "lot_name": (lot_name if kind != "labor" else False) or False,
            "operator_name": (lot_name if kind == "labor" else False) or False,
            "workcenter_id": workcenter.id or False,
            "uom_id": uom.id,
            "planned_qty": planned,
            "reported_qty": reported,
            "pending_qty": pending,
            "posted_qty": posted,
            "unmatched_qty": unmatched,
            "variance_qty": variance,
            "usage_variance_qty": usage,
            "unit_cost": unit_cost,
            "posted_value": 0.0 if lot_detail else currency.round(posted * unit_cost),
            "variance_value": 0.0 if lot_detail else variance_value,
            "usage_variance_value": currency.round(usage * unit_cost),
            "status": status,
            "lot_detail": lot_detail,
            "unmatched": not float_is_zero(unmatched, precision_rounding=rounding),
            "mes_reported": mes_reported,
        }

    def _status(self, variance, variance_value, reported, posted, pending, rounding):
        if self.production.state not in ("done", "cancel") or not float_is_zero(
            pending, precision_rounding=rounding
        ):
            return "pending"
        if float_is_zero(variance, precision_rounding=rounding):
            return "balanced"
        backend = self.backend
        share = (backend.reconcile_tolerance_pct or 0.0) / 100.0
        if abs(variance) <= share * max(abs(reported), abs(posted)):
            return "tolerance"
        if backend.reconcile_tolerance_value and abs(variance_value) <= (
            backend.reconcile_tolerance_value
        ):
            return "tolerance"
        return "variance"
