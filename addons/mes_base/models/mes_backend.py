import hashlib
import logging
import secrets
import threading
from collections import OrderedDict
from datetime import timedelta
from urllib.parse import urlsplit

from psycopg2 import OperationalError
from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL

from odoo.addons.base.models.res_users import INDEX_SIZE, KEY_CRYPT_CONTEXT

from mes_connector import signing
from mes_connector.b2mml import DEFAULT_CONVENTIONS, Conventions, scrap_use_clashes
from mes_connector.client import MesClient
from mes_connector.exceptions import MesError

from ..exceptions import MesConcurrentDelivery, MesDataError
from ..wizards.mes_backend_key_wizard import key_digest

_logger = logging.getLogger(__name__)

# Inbound keys are Odoo API keys of the backend's integration user (res.users.apikeys:
# salted, hashed by Odoo, with an expiry, listed and revocable on the user), with a scope
# of their own: they open this backend's intake and nothing else (not RPC).
KEY_SCOPE = "mes_intake:%s"
# Keys already checked against a stored hash, so that every request does not pay the
# key derivation again (6,000 rounds of PBKDF2-SHA512, about 6 ms of CPU). The check of
# a key against a stored hash is a pure function: an entry cannot outlive a revoked,
# expired or rotated key, which is no longer among the stored hashes the query returns.
# Only successes are kept (a wrong key always pays the full check), bounded.
_VERIFIED = OrderedDict()
_VERIFIED_SIZE = 1024
_VERIFIED_LOCK = threading.Lock()


def _verify_key(key, stored):
    """True when ``key`` matches the stored hash ``stored``, remembered once true."""
    digest = hashlib.sha256(f"{stored}\0{key}".encode()).digest()
    with _VERIFIED_LOCK:
        if digest in _VERIFIED:
            _VERIFIED.move_to_end(digest)
            return True
    if not KEY_CRYPT_CONTEXT.verify(key, stored):
        return False
    with _VERIFIED_LOCK:
        _VERIFIED[digest] = True
        while len(_VERIFIED) > _VERIFIED_SIZE:
            _VERIFIED.popitem(last=False)
    return True


def _convention(name, string, help_text=None):
    """The backend's name for one of the B2MML conventions, the default's by default."""
    return fields.Char(
        string, default=getattr(DEFAULT_CONVENTIONS, name), required=True, help=help_text
    )


def is_mes_user_of(user, company):
    """Whether ``user`` is a person (not a portal user) who works with the MES in ``company``."""
    return (
        user.active
        and not user.share
        and company in user.company_ids
        and user.has_group("mes_base.group_mes_user")
    )


class MesBackend(models.Model):
    _name = "mes.backend"
    _inherit = ["mail.thread"]
    _description = "MES Backend"
    _order = "sequence, id"

    name = fields.Char(required=True, tracking=True)
    code = fields.Char(
        required=True,
        help="Short identifier of this MES; it is part of the intake URL the MES posts to.",
        tracking=True,
    )
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True, tracking=True)
    company_id = fields.Many2one(
        "res.company",
        required=True,
        default=lambda self: self.env.company,
        index=True,
        tracking=True,
    )
    base_url = fields.Char(
        "MES URL",
        required=True,
        help="Base URL of the MES API, e.g. https://mes.plant.example. Changing it clears the "
        "stored MES API key: type the key again with the new address.",
        tracking=True,
    )
    # Read only by the code that sends (and Odoo administrators): integrators type a new
    # key into outbound_api_key_input, never see the stored one again.
    outbound_api_key = fields.Char("Stored MES API key", groups="base.group_system", copy=False)
    outbound_api_key_input = fields.Char(
        "MES API key",
        compute="_compute_outbound_api_key_input",
        inverse="_inverse_outbound_api_key_input",
        groups="mes_base.group_mes_manager",
        help="Key Odoo sends to the MES in the Authorization header. Type a new one to replace "
        "it; the stored key is never shown.",
    )
    outbound_key_hint = fields.Char("MES API key set", readonly=True, copy=False, tracking=True)
    verify_tls = fields.Boolean("Verify TLS certificate", default=True, tracking=True)
    timeout_connect = fields.Float("Connect timeout (s)", default=5.0)
    timeout_read = fields.Float("Read timeout (s)", default=30.0)
    export_max_retries = fields.Integer(
        "Export attempts",
        default=20,
        help="How many times an order export is tried while the MES is unreachable before the "
        "export is marked failed. The delay between attempts is the retry pattern of the "
        "queue job function 'mes.message._send'. 0 means: try forever.",
        tracking=True,
    )
    inbound_key_hint = fields.Char(
        "Inbound key",
        readonly=True,
        copy=False,
        help="Last characters of the key the MES uses.",
        tracking=True,
    )
    inbound_key_overlap_hours = fields.Integer(
        "Key rotation overlap (hours)",
        default=24,
        help="When a new inbound key is made, the previous one keeps working this long, so the "
        "MES can switch without losing a message. 0: the previous key stops at once.",
        tracking=True,
    )
    inbound_key_count = fields.Integer("Valid inbound keys", compute="_compute_inbound_key_count")
    signature_required = fields.Boolean(
        "Require signed requests",
        help="The MES signs each request with a shared secret (HMAC-SHA256 over the timestamp "
        "and the body, headers X-MES-Timestamp and X-MES-Signature): a captured key alone "
        "cannot forge or alter an event, and a captured request cannot be replayed once the "
        "tolerance has passed. Requests without a valid signature are refused (401) and not "
        "stored.",
        tracking=True,
    )
    signing_secret = fields.Char(groups="base.group_system", copy=False)
    signing_secret_hint = fields.Char("Signing secret", readonly=True, copy=False, tracking=True)
    signature_tolerance = fields.Integer(
        "Signature time tolerance (s)",
        default=signing.DEFAULT_TOLERANCE,
        help="How far the request's timestamp may be from Odoo's clock, either way.",
    )
    user_id = fields.Many2one(
        "res.users",
        "Integration user",
        required=True,
        default=lambda self: self.env.ref(
            "mes_base.user_mes_integration", raise_if_not_found=False
        ),
        help="MES messages are processed as this user: stock moves and logs show it.",
        tracking=True,
    )
    payload_format = fields.Selection(
        [("json", "JSON (mes.order/1)"), ("b2mml", "B2MML V0600 ProductionSchedule")],
        "Order format",
        default="json",
        required=True,
        help="How orders are sent. The MES may report back in JSON or B2MML whatever this is: "
        "the intake reads the format from the Content-Type.",
        tracking=True,
    )
    b2mml_logical_id = fields.Char(
        "Odoo's B2MML logical id",
        default="ODOO",
        required=True,
        help="How Odoo names itself (ApplicationArea/Sender/LogicalID) in the B2MML "
        "transactions it answers: an Acknowledge when the MES sent a Process, a ConfirmBOD "
        "when its sender asked for one.",
        tracking=True,
    )
    b2mml_transaction = fields.Boolean(
        "Orders in a B2MML transaction",
        help="B2MML orders go in their transaction (ProcessProductionSchedule for a new "
        "order, ChangeProductionSchedule for its later revisions and its cancellation), "
        "Odoo named by its B2MML logical id and each revision's idempotency key as BODID; "
        "else as a bare ProductionSchedule.",
        tracking=True,
    )
    b2mml_order_key = fields.Selection(
        [
            ("request", "ProductionRequestID: Odoo's order reference"),
            ("response", "ProductionResponse ID: the MES's order id"),
            ("data", "A production data of the segments: Odoo's order reference"),
        ],
        "B2MML orders named by",
        default="request",
        required=True,
        help="What, in a ProductionPerformance the MES sends, says which order it reports "
        "on. By the MES's order id: the one it answered when it took the order, or the one "
        "a planner entered adopting it; a report on an MES order Odoo does not know waits "
        "until a planner adopts it.",
        tracking=True,
    )
    b2mml_order_data_id = fields.Char(
        "Production data naming the order",
        help="The ID of the ProductionData (of a SegmentResponse) whose value is Odoo's order "
        "reference, e.g. ERP_ORDER.",
        tracking=True,
    )
    # B2MML conventions: how scrap, downtime, quality results and an operation's figures
    # travel in a ProductionPerformance (see mes_connector.b2mml.Conventions).
    b2mml_scrap_use = _convention(
        "scrap_use",
        "Material use of scrap",
        "A material actual whose MaterialUse is this (or Other with this OtherValue) is scrap.",
    )
    b2mml_scrap_reason = _convention("scrap_reason", "Property of the scrap reason")
    b2mml_downtime_id = _convention(
        "downtime_id",
        "Property of a downtime's id",
        "An EquipmentActual with this property reports a downtime of its equipment.",
    )
    b2mml_downtime_reason = _convention("downtime_reason", "Property of the downtime reason")
    b2mml_downtime_start = _convention("downtime_start", "Property of the downtime start")
    b2mml_downtime_end = _convention(
        "downtime_end", "Property of the downtime end", "Absent while the downtime lasts."
    )
    b2mml_downtime_comment = _convention("downtime_comment", "Property of a downtime comment")
    b2mml_quality_prefix = _convention(
        "quality_prefix",
        "Quality result properties start with",
        "A material actual's property named this and a quality characteristic (e.g. "
        "QualityResult:LEAK) is that check's result: Pass or Fail.",
    )
    b2mml_setup_minutes = _convention(
        "setup_minutes",
        "Production data of setup minutes",
        "ProductionData of an operation's SegmentResponse: its setup minutes.",
    )
    b2mml_run_minutes = _convention("run_minutes", "Production data of run minutes")
    b2mml_good_quantity = _convention(
        "good_quantity",
        "Production data of the good quantity",
        "Without it, the good quantity adds up what the operation's segment produced.",
    )
    b2mml_reject_quantity = _convention(
        "reject_quantity", "Production data of the rejected quantity"
    )
    # Master data to the MES
    master_data_enabled = fields.Boolean(
        "Send master data",
        help="Products, work centers, bills of materials and lots of components go to the "
        "MES before the first order that names them, and again when what the MES must know "
        "of them changes; orders wait until the MES has acknowledged them.",
        tracking=True,
    )
    master_data_ids = fields.One2many("mes.master.data", "backend_id", "Master data")
    master_data_count = fields.Integer(compute="_compute_master_data_count")
    resync_ids = fields.One2many("mes.master.resync", "backend_id", "Resyncs")
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
        tracking=True,
    )
    horizon_days = fields.Integer(
        "Planning horizon (days)",
        default=2,
        help="Confirmed orders that start within this many days are sent by the scheduled "
        "action 'MES: release orders in the planning horizon'.",
        tracking=True,
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
        tracking=True,
    )
    tolerance_over = fields.Float(
        "Over-consumption tolerance (%)",
        default=10.0,
        help="When the MES reports consumption: how much more than the bill of materials "
        "(for the quantity produced) is accepted at completion.",
        tracking=True,
    )
    tolerance_under = fields.Float(
        "Under-consumption tolerance (%)",
        default=10.0,
        help="When the MES reports consumption: how much less than the bill of materials is "
        "accepted at completion.",
        tracking=True,
    )
    accept_extra_components = fields.Boolean(
        "Accept components outside the BOM",
        help="A consumption of a product that is not a component of the order is added to the "
        "order instead of being an error.",
        tracking=True,
    )
    close_on_completion = fields.Boolean(
        "Final confirmation closes the order",
        default=True,
        help="When the MES confirms an order, post it and mark it done. Otherwise the produced "
        "quantity is recorded and a planner closes the order. A shift's partial confirmation "
        "(final: false) posts its part either way.",
        tracking=True,
    )
    backorder_policy = fields.Selection(
        [
            ("never", "Close the order, no backorder"),
            ("always", "Create a backorder for the rest"),
        ],
        "When less was produced",
        default="never",
        required=True,
        tracking=True,
    )
    rework_location_id = fields.Many2one(
        "stock.location",
        "Rework location",
        domain="[('usage', '=', 'internal')]",
        check_company=True,
        help="Where units the MES sends to rework wait (an internal location): moved there "
        "when the MES reports them sent to rework, and out of it when it reports them reworked "
        "or scrapped.",
        tracking=True,
    )
    rework_method = fields.Selection(
        [
            ("rebuild", "Unbuild and rebuild order"),
            ("return", "Back to stock as it is"),
        ],
        "Good after rework",
        default="rebuild",
        required=True,
        help="How a unit the MES reports reworked good is recorded. Unbuild and rebuild: an "
        "unbuild order returns its components, a rebuild order makes it again from them, "
        "with the parts the MES reports replaced (the old ones scrapped), so that its "
        "genealogy and cost are those of the unit as it leaves rework. Back to stock: moved "
        "back as it is (the MES reported no part replaced).",
        tracking=True,
    )
    sequence_numbering = fields.Selection(
        [
            ("per_order", "Numbered per order (1, 2, 3, ...)"),
            ("none", "Not numbered: order of time"),
        ],
        "MES event numbering",
        default="per_order",
        required=True,
        help="Numbered per order: the MES numbers the events of each order 1, 2, 3, ... "
        "without gaps; an event waits until those before it have all arrived, and after the "
        "waiting time below becomes an error naming the missing numbers. Not numbered: "
        "events are applied in the order of their numbers where given, else of their time, "
        "as they come.",
        tracking=True,
    )
    waiting_timeout = fields.Integer(
        "Wait for dependencies (minutes)",
        default=60,
        help="A message that waits for something not there yet (its order, an earlier "
        "event of its order, a lot) becomes an error after this long.",
        tracking=True,
    )
    # Pull mode
    pull_enabled = fields.Boolean(
        "Pull events",
        help="For an MES that cannot push: a scheduled action reads the MES's event feed.",
        tracking=True,
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
    intake_url = fields.Char("Intake URL", compute="_compute_intake_url")
    mes_message_ids = fields.One2many("mes.message", "backend_id", "MES messages")
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

    @api.constrains("base_url")
    def _check_base_url(self):
        for backend in self:
            url = urlsplit(backend.base_url or "")
            if url.scheme not in ("http", "https") or not url.hostname or " " in backend.base_url:
                raise ValidationError(
                    self.env._(
                        "MES URL %(url)r: write the address of the MES's API with http:// or "
                        "https:// and its host, e.g. https://mes.plant.example or "
                        "http://10.0.0.5:8070.",
                        url=backend.base_url,
                    )
                )
            try:
                url.port  # noqa: B018 - parsing it is the check
            except ValueError as err:
                raise ValidationError(
                    self.env._(
                        "MES URL %(url)r: the port must be a number from 1 to 65535.",
                        url=backend.base_url,
                    )
                ) from err

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

    @api.constrains("b2mml_scrap_use")
    def _check_b2mml_scrap_use(self):
        for backend in self:
            if scrap_use_clashes(backend.b2mml_scrap_use):
                raise ValidationError(
                    self.env._(
                        "Material use of scrap %(use)r: B2MML reads it as consumption, output or "
                        "a by-product; name scrap otherwise (e.g. Scrap).",
                        use=backend.b2mml_scrap_use,
                    )
                )

    @api.constrains("b2mml_order_key", "b2mml_order_data_id")
    def _check_b2mml_order_key(self):
        for backend in self:
            if (
                backend.b2mml_order_key == "data"
                and not (backend.b2mml_order_data_id or "").strip()
            ):
                raise ValidationError(
                    self.env._(
                        "B2MML orders named by a production data: name the ProductionData "
                        "(its ID, e.g. ERP_ORDER) of backend %s.",
                        backend.name,
                    )
                )

    def _b2mml_conventions(self):
        """The reader's conventions for this backend's ProductionPerformance documents."""
        self.ensure_one()
        return Conventions(
            **{
                name: (self[f"b2mml_{name}"] or "").strip() or getattr(DEFAULT_CONVENTIONS, name)
                for name in Conventions.__dataclass_fields__
            }
        )

    def _b2mml_order_key(self):
        """The reader's ``order_key`` for this backend's ProductionPerformance documents."""
        self.ensure_one()
        if self.b2mml_order_key == "data":
            return ("data", self.b2mml_order_data_id.strip())
        return self.b2mml_order_key

    @api.constrains("user_id", "company_id")
    def _check_user_company(self):
        for backend in self:
            if backend.company_id not in backend.user_id.sudo().company_ids:
                raise ValidationError(
                    self.env._(
                        "Integration user %(user)s: add the company %(company)s to the user's "
                        "allowed companies; MES messages of %(backend)s are posted as this user "
                        "in that company.",
                        user=backend.user_id.name,
                        company=backend.company_id.name,
                        backend=backend.name,
                    )
                )

    @api.constrains("inbound_key_overlap_hours", "signature_tolerance")
    def _check_durations(self):
        for backend in self:
            if not 0 <= backend.inbound_key_overlap_hours <= 8760:
                raise ValidationError(
                    self.env._(
                        "Key rotation overlap: %s hours; give 0 to 8760 (a year).",
                        backend.inbound_key_overlap_hours,
                    )
                )
            if not 1 <= backend.signature_tolerance <= 86400:
                raise ValidationError(
                    self.env._(
                        "Signature time tolerance: %s s; give 1 to 86400 (a day).",
                        backend.signature_tolerance,
                    )
                )

    def _responsible_users(self, company):
        """The people this MES's exceptions in ``company`` are for: its responsible users and
        group, those of them who are MES users of that company."""
        users = self.notify_user_ids | self.notify_group_id.users
        return users.filtered(lambda user: is_mes_user_of(user, company))

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._check_integration_user(vals)
        return super().create(vals_list)

    def _check_integration_user(self, vals):
        """Who MES messages are posted as is chosen by Odoo administrators: an MES manager
        could otherwise post as anyone, with that person's rights."""
        if self.env.su or self.env.is_system() or not vals.get("user_id"):
            return
        default = self.env.ref("mes_base.user_mes_integration", raise_if_not_found=False)
        changed = not self or any(backend.user_id.id != vals["user_id"] for backend in self)
        if changed and vals["user_id"] != (default and default.id):
            raise AccessError(
                self.env._("Only Odoo administrators choose the integration user of an MES.")
            )

    def write(self, vals):
        self._check_integration_user(vals)
        if "base_url" in vals and "outbound_api_key_input" not in vals and not self.env.su:
            # The key goes where the URL says: a new address needs the key typed again, so
            # that changing the URL cannot send the stored key to someone else.
            vals = dict(vals, outbound_api_key_input=False)
            for backend in self.filtered(lambda b: b.base_url != vals["base_url"]):
                backend.sudo().write({"outbound_api_key": False, "outbound_key_hint": False})
        res = super().write(vals)
        if not self.env.su:
            # Checked after the change too: a backend cannot be moved to a company the
            # user has no access to (and its keys with it).
            self.check_access("write")
        if "user_id" in vals:
            # The inbound keys follow the backend to its new integration user.
            for backend in self:
                backend._inbound_keys().sudo().write({"user_id": backend.user_id.id})
        return res

    def _compute_outbound_api_key_input(self):
        self.outbound_api_key_input = False

    def _inverse_outbound_api_key_input(self):
        for backend in self.filtered("outbound_api_key_input"):
            key = backend.outbound_api_key_input.strip()
            backend.sudo().write({"outbound_api_key": key, "outbound_key_hint": "…" + key[-4:]})
            backend._log_key_event(
                self.env._("The key Odoo sends to the MES was replaced (…%s).", key[-4:])
            )

    def _log_key_event(self, text):
        """A note on the backend of what happened to its keys, by whom: never the key."""
        self.sudo().message_post(
            body=self.env._("%(text)s By %(user)s.", text=text, user=self.env.user.name),
            author_id=self.env.user.partner_id.id,
        )

    def _compute_inbound_key_count(self):
        for backend in self:
            backend.inbound_key_count = len(backend._inbound_keys())

    def _check_manager(self, operation="write"):
        """Integrator actions: MES managers, on backends of their companies only."""
        if not self.env.su and not self.env.user.has_group("mes_base.group_mes_manager"):
            raise AccessError(self.env._("Only MES managers may do this on an MES backend."))
        self.check_access(operation)

    def action_generate_inbound_key(self):
        """New key for the MES to call Odoo with, shown once: in use once the manager
        says the MES has it (see mes.backend.key.wizard).

        The key exists in clear only in the answer to the manager who asked for it (the
        context of the dialog that shows it): Odoo keeps its hash, nothing else.
        """
        return self._new_secret_dialog(
            "inbound_key", "mes_new_inbound_key", self.env._("New inbound API key")
        )

    def action_generate_signing_secret(self):
        """New secret the MES signs its requests with: shown once, like an inbound key,
        and in use once the manager says the MES has it.

        Kept readable by the code that checks signatures only (HMAC needs the secret
        itself, not a hash of it)."""
        return self._new_secret_dialog(
            "signing_secret", "mes_new_signing_secret", self.env._("New signing secret")
        )

    def _new_secret_dialog(self, kind, context_key, title):
        self.ensure_one()
        self._check_manager()
        value = secrets.token_urlsafe(32)
        # In superuser mode (the digest is Odoo's to write), as the manager who asked
        # (whose dialog it is).
        wizard = (
            self.env["mes.backend.key.wizard"]
            .sudo()
            .create({"backend_id": self.id, "kind": kind, "digest": key_digest(value)})
            .sudo(False)
        )
        return {
            "type": "ir.actions.act_window",
            "name": title,
            "res_model": "mes.backend.key.wizard",
            "res_id": wizard.id,
            "view_mode": "form",
            "target": "new",
            "context": {context_key: value},
        }

    def _use_inbound_key(self, key):
        self._set_inbound_key(key, overlap_hours=self.inbound_key_overlap_hours)
        self._log_key_event(
            self.env._(
                "New inbound key in use (…%(end)s); the previous ones work %(overlap)s more "
                "hour(s).",
                end=key[-4:],
                overlap=self.inbound_key_overlap_hours,
            )
        )

    def _use_signing_secret(self, secret):
        if len(secret or "") < 32:
            raise UserError(self.env._("A signing secret needs at least 32 characters."))
        self.sudo().write({"signing_secret": secret, "signing_secret_hint": "…" + secret[-4:]})
        self._log_key_event(
            self.env._(
                "New signing secret in use (…%s): requests signed with the previous one are "
                "refused.",
                secret[-4:],
            )
        )

    def _check_signature(self, timestamp, sent_signature, body):
        """Why a request must be refused for its signature, or None (also when not asked)."""
        self.ensure_one()
        backend = self.sudo()
        if not backend.signature_required:
            return None
        if not backend.signing_secret:
            return "this backend requires signed requests but has no signing secret yet"
        return signing.verify(
            backend.signing_secret,
            timestamp,
            sent_signature,
            body,
            tolerance=backend.signature_tolerance or signing.DEFAULT_TOLERANCE,
        )

    def action_revoke_previous_inbound_keys(self):
        """End a key rotation now: only the newest inbound key keeps working."""
        self._check_manager()
        for backend in self:
            previous = backend._inbound_keys()[1:]
            previous.sudo().unlink()
            if previous:
                backend._log_key_event(
                    self.env._("%s previous inbound key(s) revoked.", len(previous))
                )
        return True

    def action_test_connection(self):
        self.ensure_one()
        self._check_manager("read")
        try:
            self._get_client().health()
        except (MesError, ValueError) as err:
            raise UserError(
                self.env._(
                    "The MES at %(url)s did not answer as expected: %(err)s",
                    url=self.base_url,
                    err=err,
                )
            ) from err
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
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("mes_base.mes_message_action")
        action["domain"] = [("backend_id", "=", self.id)]
        return action

    def _inbound_keys(self):
        """This backend's valid inbound keys (res.users.apikeys), newest first."""
        self.ensure_one()
        keys = self.env["res.users.apikeys"].sudo()
        self.env.cr.execute(
            """
            SELECT id FROM res_users_apikeys
             WHERE scope = %s
               AND (expiration_date IS NULL OR expiration_date >= now() at time zone 'utc')
             ORDER BY create_date DESC, id DESC
            """,
            (KEY_SCOPE % self.id,),
        )
        return keys.browse([row[0] for row in self.env.cr.fetchall()])

    def _set_inbound_key(self, key, overlap_hours=0):
        """Make ``key`` an inbound key of this backend; the previous ones stop working after
        ``overlap_hours`` (a rotation), or at once."""
        self.ensure_one()
        if not key or len(key) < 16:
            raise UserError(self.env._("An inbound API key needs at least 16 characters."))
        previous = self._inbound_keys()
        if overlap_hours > 0:
            until = fields.Datetime.now() + timedelta(hours=overlap_hours)
            previous.filtered(lambda k: not k.expiration_date or k.expiration_date > until).write(
                {"expiration_date": until}
            )
        else:
            previous.unlink()
        # Stored as Odoo stores its own API keys (index and salted hash), under the
        # integration user, with this backend's scope.
        self.env.cr.execute(
            """
            INSERT INTO res_users_apikeys (name, user_id, scope, key, index, create_date)
            VALUES (%s, %s, %s, %s, %s, now() at time zone 'utc')
            """,
            (
                f"MES intake {self.code}",
                self.user_id.id,
                KEY_SCOPE % self.id,
                KEY_CRYPT_CONTEXT.hash(key),
                key[:INDEX_SIZE],
            ),
        )
        self.sudo().inbound_key_hint = "…" + key[-4:]

    def _check_inbound_key(self, key):
        """True when ``key`` is one of this backend's valid inbound keys."""
        self.ensure_one()
        return self._key_holder([("b.id", self.id)], key) == self

    @api.model
    def _authenticate(self, code, key):
        """The active backend of this intake code whose valid inbound key ``key`` is
        (one query: the backend, its integration user and the key's hashes), or none."""
        return self._key_holder([("b.code", code), ("b.active", True)], key)

    @api.model
    def _key_holder(self, where, key):
        """The backend matching ``where`` (column, value pairs) that ``key`` opens: its
        user active, the key unexpired, for this backend's intake scope."""
        if not key or not isinstance(key, str) or len(key) > 256:
            return self.browse()
        self.env.cr.execute(
            SQL(
                """
                SELECT b.id, k.key FROM mes_backend b
                  JOIN res_users u ON u.id = b.user_id AND u.active
                  JOIN res_users_apikeys k
                    ON k.user_id = u.id AND k.index = %s AND k.scope = %s || b.id
                 WHERE %s AND (k.expiration_date IS NULL
                               OR k.expiration_date >= now() at time zone 'utc')
                """,
                key[:INDEX_SIZE],
                KEY_SCOPE % "",
                SQL(" AND ").join(SQL("%s = %s", SQL(column), value) for column, value in where),
            )
        )
        for backend_id, stored in self.env.cr.fetchall():
            if _verify_key(key, stored):
                return self.browse(backend_id)
        return self.browse()

    def _compute_master_data_count(self):
        counts = dict(
            self.env["mes.master.data"]._read_group(
                [("backend_id", "in", self.ids)], ["backend_id"], ["__count"]
            )
        )
        for backend in self:
            backend.master_data_count = counts.get(backend, 0)

    def _master_data_lang(self):
        """The language of the names the MES gets: its integration user's."""
        return self.user_id.lang or "en_US"

    def action_resync_master_data(self):
        """Go-live, or a new MES: send all the master data it needs once more."""
        self.ensure_one()
        self._check_manager()
        run = self.env["mes.master.resync"].sudo()._start(self)
        return {
            "type": "ir.actions.act_window",
            "res_model": "mes.master.resync",
            "res_id": run.id,
            "view_mode": "form",
            "views": [(False, "form")],
        }

    def action_view_master_data(self):
        self.ensure_one()
        self.check_access("read")
        self.env["mes.master.data"].check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("mes_base.mes_master_data_action")
        action["domain"] = [("backend_id", "=", self.id)]
        return action

    def _get_client(self):
        self.ensure_one()
        return MesClient(
            self.base_url,
            api_key=self.sudo().outbound_api_key or None,
            timeout=(self.timeout_connect or 5.0, self.timeout_read or 30.0),
            verify=self.verify_tls,
        )

    def action_pull_now(self):
        self._check_manager()
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
            except (MesConcurrentDelivery, pg_errors.SerializationFailure):
                # The same events pushed by the MES at this moment: read again next run.
                _logger.info(
                    "MES backend %s: feed events stored concurrently, read again", backend.code
                )
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
            messages._intake(self, None, body)
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
