"""A full resync of master data to an MES: at go-live, or for a new MES.

Every product of a bill of materials, work center, bill of materials and lot in stock of
a component is written for the MES once more, in chunks, each chunk a queue job that
commits what it wrote and where it stopped: a run killed halfway goes on from there (its
job is queued again by queue_job, or a manager resumes it), never writing a record twice.
"""

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.queue_job.job import identity_exact

from ..locking import lock_or_retry
from .mes_master_data import KIND_MODEL, KINDS

PHASES = [kind for kind, _label in KINDS]
CHUNK = 200
# Skipped records are counted; the first ones are named, so that someone can fix them.
SKIPPED_SHOWN = 50


class MesMasterResync(models.Model):
    _name = "mes.master.resync"
    _description = "MES master data resync"
    _order = "id desc"

    backend_id = fields.Many2one("mes.backend", "MES", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="backend_id.company_id", store=True)
    user_id = fields.Many2one("res.users", "Started by", readonly=True)
    state = fields.Selection(
        [("running", "Writing"), ("written", "Written"), ("stopped", "Stopped")],
        default="running",
        required=True,
        readonly=True,
    )
    phase = fields.Selection(KINDS, default=PHASES[0], readonly=True)
    cursor = fields.Integer(readonly=True, help="The last record of the phase written.")
    started_at = fields.Datetime(readonly=True, default=fields.Datetime.now)
    written_at = fields.Datetime("All written at", readonly=True)
    planned_count = fields.Integer("To write", readonly=True)
    written_count = fields.Integer("Written", readonly=True)
    skipped_count = fields.Integer("Skipped", readonly=True)
    skipped_text = fields.Text("Why skipped", readonly=True)
    message_ids = fields.One2many("mes.message", "resync_id", "Messages")
    delivered_count = fields.Integer("Acknowledged", compute="_compute_progress")
    refused_count = fields.Integer("Refused", compute="_compute_progress")
    to_deliver_count = fields.Integer("Not delivered yet", compute="_compute_progress")
    progress = fields.Float(compute="_compute_progress", help="Written and delivered, in %.")

    @api.depends("written_count", "planned_count", "state")
    def _compute_progress(self):
        groups = (
            self.env["mes.message"]
            .sudo()
            ._read_group([("resync_id", "in", self.ids)], ["resync_id", "state"], ["__count"])
        )
        counts = {}
        for run, state, count in groups:
            counts.setdefault(run.id, {})[state] = count
        for run in self:
            mine = counts.get(run.id, {})
            run.delivered_count = mine.get("acknowledged", 0)
            run.refused_count = mine.get("rejected", 0) + mine.get("failed", 0)
            run.to_deliver_count = mine.get("pending", 0) + mine.get("sent", 0)
            # Half for writing, half for delivering (superseded revisions are settled).
            done = run.written_count + run.skipped_count
            writing = 1 if run.state == "written" else min(done / max(run.planned_count, 1), 1)
            messages = sum(mine.values())
            delivering = 1 - run.to_deliver_count / messages if messages else writing
            run.progress = round(50 * writing + 50 * delivering, 1)

    # Starting, resuming, stopping

    @api.model
    def _start(self, backend):
        """A new run for ``backend``: counts what it will write and queues its first chunk."""
        if not backend.master_data_enabled:
            raise UserError(
                self.env._("%s does not send master data: switch it on first.", backend.name)
            )
        running = self.search([("backend_id", "=", backend.id), ("state", "=", "running")])
        if running:
            raise UserError(
                self.env._(
                    "A resync of %(backend)s is already running (started %(when)s): resume or "
                    "stop it.",
                    backend=backend.name,
                    when=fields.Datetime.to_string(running[0].started_at),
                )
            )
        run = self.create({"backend_id": backend.id, "user_id": self.env.uid})
        run.planned_count = sum(
            self.env[KIND_MODEL[kind]].sudo().search_count(run._domain(kind)) for kind in PHASES
        )
        run._enqueue_chunk()
        return run

    def action_resume(self):
        """Queue the run's next chunk again (a run whose worker was killed goes on by
        itself when queue_job requeues its job; this does not wait for that)."""
        self.backend_id._check_manager()
        for run in self.sudo().filtered(lambda r: r.state != "written"):
            running = self.sudo().search(
                [
                    ("backend_id", "=", run.backend_id.id),
                    ("state", "=", "running"),
                    ("id", "!=", run.id),
                ],
                limit=1,
            )
            if running:
                raise UserError(
                    self.env._(
                        "Another resync of %s is running: stop it first.", run.backend_id.name
                    )
                )
            run.state = "running"
            run._enqueue_chunk()
        return True

    def action_stop(self):
        """Stop writing; what was written is delivered all the same."""
        self.backend_id._check_manager()
        self.sudo().filtered(lambda r: r.state == "running").state = "stopped"
        return True

    def action_view_messages(self):
        self.ensure_one()
        self.check_access("read")
        self.env["mes.message"].check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("mes_base.mes_message_action")
        action["domain"] = [("resync_id", "=", self.id)]
        action["context"] = {}
        action["name"] = self.display_name
        return action

    @api.depends("backend_id", "started_at")
    def _compute_display_name(self):
        for run in self:
            run.display_name = self.env._(
                "Master data resync of %(backend)s, %(when)s",
                backend=run.backend_id.name,
                when=fields.Datetime.to_string(run.started_at),
            )

    # The work

    def _enqueue_chunk(self):
        self.ensure_one()
        backend = self.backend_id
        self.with_user(backend.user_id).with_context(
            allowed_company_ids=backend.company_id.ids
        ).with_delay(
            description=f"{self.display_name}: {self.phase} after {self.cursor}",
            identity_key=identity_exact,
            priority=20,
        )._run_chunk(self.phase, self.cursor)

    def _domain(self, kind):
        """What a resync writes of ``kind`` for this run's MES."""
        company = self.backend_id.company_id.id
        companies = [False, company]
        any_bom = [("active", "=", True), ("company_id", "in", companies)]
        bom_domain = [*any_bom, ("type", "=", "normal")]
        # Components reach orders through kits too (exploded in them).
        if kind == "material":
            return [
                ("company_id", "in", companies),
                "|",
                "|",
                "|",
                ("bom_line_ids", "any", [("bom_id", "any", any_bom)]),
                ("variant_bom_ids", "any", bom_domain),
                ("product_tmpl_id.bom_ids", "any", bom_domain),
                ("id", "in", self._byproducts(bom_domain)),
            ]
        if kind == "equipment":
            return [("company_id", "in", companies)]
        if kind == "bom":
            return bom_domain
        return [
            ("company_id", "in", companies),
            ("product_id.bom_line_ids", "any", [("bom_id", "any", any_bom)]),
            (
                "quant_ids",
                "any",
                [("location_id.usage", "=", "internal"), ("quantity", ">", 0)],
            ),
        ]

    def _byproducts(self, bom_domain):
        return (
            self.env["mrp.bom.byproduct"]
            .sudo()
            .search([("bom_id", "any", bom_domain)])
            .product_id.ids
        )

    def _run_chunk(self, phase, cursor):
        """Write the next chunk of the run (queue job): each record once per run."""
        self.ensure_one()
        if not self.env.su:
            return self.sudo()._run_chunk(phase, cursor)
        lock_or_retry(self, seconds=5)
        if self.state != "running" or (self.phase, self.cursor) != (phase, cursor):
            return "nothing to do: another job of this run went on"
        master = self.env["mes.master.data"].sudo()
        records = (
            self.env[KIND_MODEL[phase]]
            .sudo()
            .search([*self._domain(phase), ("id", ">", cursor)], order="id", limit=CHUNK)
        )
        written = skipped = 0
        reasons = []
        for record in records:
            try:
                with self.env.cr.savepoint():
                    master._ensure(self.backend_id, phase, record, resync=self)
                written += 1
            except UserError as err:
                skipped += 1
                reasons.append(str(err).split("\n")[0])
        vals = {
            "written_count": self.written_count + written,
            "skipped_count": self.skipped_count + skipped,
        }
        shown = (self.skipped_text or "").count("\n") + bool(self.skipped_text)
        if reasons and shown < SKIPPED_SHOWN:
            vals["skipped_text"] = "\n".join(
                filter(None, [self.skipped_text, *reasons[: SKIPPED_SHOWN - shown]])
            )
        if len(records) == CHUNK:
            vals["cursor"] = records[-1].id
        elif PHASES.index(phase) + 1 < len(PHASES):
            vals.update(phase=PHASES[PHASES.index(phase) + 1], cursor=0)
        else:
            vals.update(state="written", written_at=fields.Datetime.now())
        self.write(vals)
        if self.state == "running":
            self._enqueue_chunk()
        return f"{phase}: {written} written, {skipped} skipped"
