import hashlib
import hmac
import json
import logging
import secrets
from datetime import timedelta

from psycopg2 import OperationalError
from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.exceptions import UserError

from mes_connector.client import MesClient
from mes_connector.exceptions import MesError

from ..exceptions import MesDataError

_logger = logging.getLogger(__name__)


def _hash_key(key):
    # Inbound keys are 256-bit random tokens: a plain SHA-256 is enough to make a
    # leaked database useless for calling the API (no dictionary to try).
    return hashlib.sha256(key.encode()).hexdigest()


class MesBackend(models.Model):
    _name = "mes.backend"
    _description = "MES Backend"
    _order = "sequence, id"

    name = fields.Char(required=True)
    code = fields.Char(
        required=True,
        help="Short identifier of this MES; it is part of the intake URL the MES posts to.",
    )
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    base_url = fields.Char(
        "MES URL", required=True, help="Base URL of the MES API, e.g. https://mes.plant.example"
    )
    outbound_api_key = fields.Char(
        "MES API key",
        groups="mes_base.group_mes_manager",
        help="Key Odoo sends to the MES in the Authorization header.",
    )
    verify_tls = fields.Boolean("Verify TLS certificate", default=True)
    timeout_connect = fields.Float("Connect timeout (s)", default=5.0)
    timeout_read = fields.Float("Read timeout (s)", default=30.0)
    export_max_retries = fields.Integer(
        "Export attempts",
        default=20,
        help="How many times an order export is tried while the MES is unreachable before the "
        "export is marked failed. The delay between attempts is the retry pattern of the "
        "queue job function 'mes.message._send'. 0 means: try forever.",
    )
    inbound_key_hash = fields.Char(groups="base.group_system", copy=False)
    inbound_key_hint = fields.Char(
        "Inbound key", readonly=True, copy=False, help="Last characters of the key the MES uses."
    )
    user_id = fields.Many2one(
        "res.users",
        "Integration user",
        required=True,
        default=lambda self: self.env.ref(
            "mes_base.user_mes_integration", raise_if_not_found=False
        ),
        help="MES messages are processed as this user: stock moves and logs show it.",
    )
    payload_format = fields.Selection(
        [("json", "JSON (mes.order/1)"), ("b2mml", "B2MML V0600 ProductionSchedule")],
        "Order format",
        default="json",
        required=True,
        help="How orders are sent. The MES may report back in JSON or B2MML whatever this is: "
        "the intake reads the format from the Content-Type.",
    )
    # When orders go to the MES
    export_trigger = fields.Selection(
        [
            ("confirm", "When the order is confirmed"),
            ("manual", "When a planner releases it"),
            ("horizon", "When it enters the planning horizon"),
        ],
        "Send orders",
        default="confirm",
        required=True,
    )
    horizon_days = fields.Integer(
        "Planning horizon (days)",
        default=2,
        help="Confirmed orders that start within this many days are sent by the scheduled "
        "action 'MES: release orders in the planning horizon'.",
    )
    # Policies: how what the MES reports is applied
    consumption_owner = fields.Selection(
        [
            ("odoo", "Odoo backflushes the bill of materials at completion"),
            ("mes", "The MES reports every consumption"),
        ],
        default="odoo",
        required=True,
        help="Who decides what an order consumed. With 'MES', only the consumption the MES "
        "reports is posted; with 'Odoo', the components of the bill of materials are consumed "
        "for the quantity produced when the MES confirms the order.",
    )
    tolerance_over = fields.Float(
        "Over-consumption tolerance (%)",
        default=10.0,
        help="When the MES reports consumption: how much more than the bill of materials "
        "(for the quantity produced) is accepted at completion.",
    )
    tolerance_under = fields.Float(
        "Under-consumption tolerance (%)",
        default=10.0,
        help="When the MES reports consumption: how much less than the bill of materials is "
        "accepted at completion.",
    )
    accept_extra_components = fields.Boolean(
        "Accept components outside the BOM",
        help="A consumption of a product that is not a component of the order is added to the "
        "order instead of being an error.",
    )
    close_on_completion = fields.Boolean(
        "Final confirmation closes the order",
        default=True,
        help="When the MES confirms an order, post it and mark it done. Otherwise the produced "
        "quantity is recorded and a planner closes the order.",
    )
    backorder_policy = fields.Selection(
        [
            ("never", "Close the order, no backorder"),
            ("always", "Create a backorder for the rest"),
        ],
        "When less was produced",
        default="never",
        required=True,
    )
    waiting_timeout = fields.Integer(
        "Wait for dependencies (minutes)",
        default=60,
        help="A message that waits for something not there yet (its order, an earlier "
        "message, a lot) becomes an error after this long.",
    )
    # Pull mode
    pull_enabled = fields.Boolean(
        "Pull events",
        help="For an MES that cannot push: a scheduled action reads the MES's event feed.",
    )
    pull_cursor = fields.Integer(
        "Feed position", readonly=True, help="Position of the last event stored from the feed."
    )
    pull_batch = fields.Integer("Events per read", default=500)
    pull_last_success_at = fields.Datetime("Feed last read", readonly=True, copy=False)
    pull_last_error = fields.Char("Feed read error", readonly=True, copy=False)
    notify_severity = fields.Selection(
        [
            ("critical", "Critical only"),
            ("error", "Errors and critical"),
            ("warning", "Everything, warnings included"),
            ("never", "Never"),
        ],
        "Notify",
        default="error",
        required=True,
        help="Which new errors give the responsible people an activity: one per cause (code "
        "and value at fault) while it is open, done when its messages are posted or cancelled.",
    )
    notify_user_ids = fields.Many2many(
        "res.users",
        "mes_backend_notify_user_rel",
        string="Responsible users",
        domain=[("share", "=", False)],
    )
    notify_group_id = fields.Many2one(
        "res.groups",
        "Responsible group",
        help="Each user of this group gets the activity of a new error cause.",
    )
    mapping_ids = fields.One2many("mes.mapping", "backend_id", "Mappings")
    intake_url = fields.Char(compute="_compute_intake_url")
    message_ids = fields.One2many("mes.message", "backend_id")
    message_count = fields.Integer(compute="_compute_message_count")

    _sql_constraints = [
        ("code_uniq", "unique(code)", "The code of an MES backend must be unique."),
    ]

    @api.depends("code")
    def _compute_intake_url(self):
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "")
        for backend in self:
            backend.intake_url = f"{base}/mes/api/v1/{backend.code}/events" if backend.code else ""

    def _compute_message_count(self):
        counts = dict(
            self.env["mes.message"]._read_group(
                [("backend_id", "in", self.ids)], ["backend_id"], ["__count"]
            )
        )
        for backend in self:
            backend.message_count = counts.get(backend, 0)

    @api.constrains("code")
    def _check_code(self):
        for backend in self:
            if not backend.code.replace("_", "").replace("-", "").isalnum():
                raise UserError(
                    self.env._(
                        "Code %(code)r: use only letters, digits, '-' and '_' "
                        "(it becomes part of a URL).",
                        code=backend.code,
                    )
                )

    def action_generate_inbound_key(self):
        """New key for the MES to call Odoo with: shown once, then only its hash is kept."""
        self.ensure_one()
        key = secrets.token_urlsafe(32)
        self._set_inbound_key(key)
        wizard = self.env["mes.backend.key.wizard"].create({"backend_id": self.id, "key": key})
        return {
            "type": "ir.actions.act_window",
            "res_model": wizard._name,
            "res_id": wizard.id,
            "view_mode": "form",
            "target": "new",
        }

    def action_test_connection(self):
        self.ensure_one()
        try:
            self._get_client().health()
        except MesError as err:
            raise UserError(self.env._("The MES did not answer as expected: %s", err)) from err
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": self.env._("The MES at %s answers.", self.base_url),
            },
        }

    def action_view_messages(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("mes_base.mes_message_action")
        action["domain"] = [("backend_id", "=", self.id)]
        return action

    def _set_inbound_key(self, key):
        if not key or len(key) < 16:
            raise UserError(self.env._("An inbound API key needs at least 16 characters."))
        self.sudo().write({"inbound_key_hash": _hash_key(key), "inbound_key_hint": "…" + key[-4:]})

    def _check_inbound_key(self, key):
        """True when ``key`` is this backend's inbound key (constant-time comparison)."""
        self.ensure_one()
        stored = self.sudo().inbound_key_hash
        if not key or not stored:
            return False
        return hmac.compare_digest(_hash_key(key), stored)

    def _get_client(self):
        self.ensure_one()
        return MesClient(
            self.base_url,
            api_key=self.sudo().outbound_api_key or None,
            timeout=(self.timeout_connect or 5.0, self.timeout_read or 30.0),
            verify=self.verify_tls,
        )

    def action_pull_now(self):
        for backend in self:
            backend._pull_events()
        return True

    @api.model
    def _cron_release_horizon(self):
        """Send the confirmed orders that now start within their backend's horizon."""
        for backend in self.search([("export_trigger", "=", "horizon")]):
            limit = fields.Datetime.now() + timedelta(days=backend.horizon_days)
            productions = self.env["mrp.production"].search(
                [
                    ("company_id", "=", backend.company_id.id),
                    ("state", "in", ("confirmed", "progress")),
                    ("mes_state", "=", "not_sent"),
                    ("date_start", "<=", limit),
                ]
            )
            for production in productions.filtered(lambda p, b=backend: p._mes_backend() == b):
                try:
                    with self.env.cr.savepoint():
                        production._mes_export()
                except UserError as err:
                    # One order that cannot be sent must not hold back the others. It stays
                    # "not sent", shows why, and is tried again at the next run.
                    reason = err.args[0]
                    if production.mes_export_error != reason:
                        production.mes_export_error = reason
                        production._message_log(body=self.env._("Not sent to the MES: %s", reason))

    @api.model
    def _cron_pull_events(self):
        for backend in self.search([("pull_enabled", "=", True)]):
            # One unreachable feed must not undo what the others stored in this run.
            try:
                with self.env.cr.savepoint():
                    backend._pull_events()
            except pg_errors.LockNotAvailable:
                # Someone reads this feed right now ("Read the feed now"): not an error.
                _logger.info("MES backend %s: feed being read elsewhere, skipped", backend.code)
            except (MesError, OperationalError) as err:
                _logger.warning("MES backend %s: event feed not read: %s", backend.code, err)
                backend.sudo().pull_last_error = str(err)[:250]

    def _pull_events(self):
        """Store what the MES's feed holds after the cursor; the cursor moves in the same
        transaction as the stored messages, so it never passes an event that is not kept."""
        self.ensure_one()
        self.env.cr.execute(
            # NO KEY UPDATE: messages keep being inserted for this backend meanwhile.
            "SELECT pull_cursor FROM mes_backend WHERE id = %s FOR NO KEY UPDATE NOWAIT",
            (self.id,),
        )
        cursor = self.env.cr.fetchone()[0] or 0
        events = self._get_client().fetch_events(after=cursor, limit=self.pull_batch or 500)
        messages = self.env["mes.message"]
        for item in events:
            body = item["body"]
            messages._intake(self, json.dumps(body, ensure_ascii=False), body)
            cursor = max(cursor, int(item["seq"]))
        self.sudo().write(
            {
                "pull_cursor": cursor,
                "pull_last_success_at": fields.Datetime.now(),
                "pull_last_error": False,
            }
        )
        return len(events)

    def _resolve(self, mapping_type, code, field, fallback=None):
        """The Odoo record an MES code stands for, or a data error naming the code."""
        self.ensure_one()
        mapping = self.env["mes.mapping"].search(
            [
                ("backend_id", "=", self.id),
                ("mapping_type", "=", mapping_type),
                ("mes_code", "=", code),
            ],
            limit=1,
        )
        record = mapping._target() if mapping else (fallback(code) if fallback else None)
        if not record:
            label = dict(self.env["mes.mapping"]._fields["mapping_type"].selection)[mapping_type]
            raise MesDataError(
                f"unmapped_{mapping_type}",
                self.env._(
                    "%(field)s: MES code %(code)r is not mapped to any %(what)s. Add it under "
                    "MES Backends > %(backend)s > Mappings, then retry.",
                    field=field,
                    code=code,
                    what=label.lower(),
                    backend=self.name,
                ),
                value=code,
            )
        return record

    @api.model
    def _for_production(self, production):
        """The backend that runs ``production`` on the shop floor, if any."""
        return self.search([("company_id", "=", production.company_id.id)], limit=1)
