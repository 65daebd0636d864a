from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError


class MesQualityHold(models.Model):
    """A lot held after a failed MES quality result: blocked, perhaps in quarantine.

    Released by a later passing result of the same characteristic, or by a quality user;
    a lot in quarantine goes back to where it was taken from.
    """

    _name = "mes.quality.hold"
    _description = "MES quality hold of a lot"
    _inherit = ["mail.thread"]
    _order = "state, held_at desc, id desc"

    name = fields.Char(compute="_compute_name", store=True)
    lot_id = fields.Many2one("stock.lot", required=True, index=True, readonly=True)
    product_id = fields.Many2one(related="lot_id.product_id", store=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    backend_id = fields.Many2one("mes.backend", "MES", readonly=True)
    production_id = fields.Many2one("mrp.production", "Manufacturing order", readonly=True)
    inspection_id = fields.Many2one("qc.inspection", "Failed inspection", readonly=True)
    message_id = fields.Many2one("mes.message", "MES message", readonly=True)
    characteristic = fields.Char(readonly=True)
    reason = fields.Char(readonly=True)
    mode = fields.Selection(
        [("block", "Blocked"), ("quarantine", "Quarantine")], required=True, readonly=True
    )
    state = fields.Selection(
        [("held", "Held"), ("released", "Released")],
        default="held",
        required=True,
        readonly=True,
        index=True,
        tracking=True,
    )
    held_at = fields.Datetime(readonly=True)
    released_at = fields.Datetime(readonly=True)
    released_by_id = fields.Many2one("res.users", "Released by", readonly=True)
    release_reason = fields.Char(readonly=True, tracking=True)
    quarantine_move_ids = fields.Many2many(
        "stock.move",
        "mes_quality_hold_quarantine_move_rel",
        string="Into quarantine",
        readonly=True,
    )
    return_move_ids = fields.Many2many(
        "stock.move",
        "mes_quality_hold_return_move_rel",
        string="Back from quarantine",
        readonly=True,
    )

    @api.depends("lot_id", "characteristic")
    def _compute_name(self):
        for hold in self:
            hold.name = f"{hold.lot_id.name or ''} ({hold.characteristic or ''})"

    # Holding

    @api.model
    def _hold(self, lot, inspection, message, backend):
        """Hold ``lot`` as the backend says; a lot already held for the same check stays so."""
        existing = self.search(
            [
                ("lot_id", "=", lot.id),
                ("characteristic", "=", inspection.mes_characteristic),
                ("state", "=", "held"),
            ],
            limit=1,
        )
        if existing:
            return existing
        mode = backend.quality_hold
        hold = self.create(
            {
                "lot_id": lot.id,
                "company_id": message.company_id.id,
                "backend_id": backend.id,
                "production_id": message.production_id.id,
                "inspection_id": inspection.id,
                "message_id": message.id,
                "characteristic": inspection.mes_characteristic,
                "reason": self.env._(
                    "%(char)s failed in %(inspection)s",
                    char=inspection.mes_characteristic,
                    inspection=inspection.name,
                ),
                "mode": mode,
                "held_at": fields.Datetime.now(),
            }
        )
        hold._unreserve()
        lot._mes_schedule_status()
        if mode == "quarantine":
            hold._move_to_quarantine(backend.quarantine_location_id)
        return hold

    def _unreserve(self):
        """Reservations of the lot that are not picked yet go to other lots, if there are."""
        lines = self.env["stock.move.line"].search(
            [
                ("lot_id", "=", self.lot_id.id),
                ("state", "not in", ("done", "cancel")),
                ("picked", "=", False),
            ]
        )
        moves = lines.move_id
        if moves:
            moves._do_unreserve()
            moves._action_assign()

    def _move_to_quarantine(self, quarantine):
        self.ensure_one()
        if not quarantine:
            raise UserError(
                self.env._(
                    "The MES backend %s puts failed lots in quarantine but has no quarantine "
                    "location.",
                    self.backend_id.name,
                )
            )
        quants = self.env["stock.quant"].search(
            [
                ("lot_id", "=", self.lot_id.id),
                ("location_id.usage", "=", "internal"),
                ("location_id", "not any", [("id", "child_of", quarantine.id)]),
                ("quantity", ">", 0),
            ]
        )
        for quant in quants:
            self.quarantine_move_ids |= self._move(quant.location_id, quarantine, quant.quantity)

    def _move(self, source, destination, quantity):
        lot = self.lot_id
        move = self.env["stock.move"].create(
            {
                "name": self.env._("Quality hold: %s", self.name),
                "product_id": lot.product_id.id,
                "product_uom": lot.product_id.uom_id.id,
                "product_uom_qty": quantity,
                "location_id": source.id,
                "location_dest_id": destination.id,
                "company_id": self.company_id.id,
                "origin": self.inspection_id.name or self.name,
            }
        )
        move._action_confirm()
        move.move_line_ids.unlink()
        self.env["stock.move.line"].create(
            {
                "move_id": move.id,
                "product_id": lot.product_id.id,
                "product_uom_id": lot.product_id.uom_id.id,
                "lot_id": lot.id,
                "quantity": quantity,
                "location_id": source.id,
                "location_dest_id": destination.id,
            }
        )
        move.picked = True
        move._action_done()
        return move

    # Release

    def action_release(self, reason=None):
        if not self.env.su and not self.env.user.has_group(
            "quality_control_oca.group_quality_control_user"
        ):
            raise AccessError(self.env._("Only quality users may release a quality hold."))
        self.check_access("read")  # holds of the user's companies only
        reason = reason or self.env._("Released by %s", self.env.user.name)
        for hold in self.filtered(lambda h: h.state == "held"):
            hold.sudo()._release(reason)
        return True

    def _release(self, reason):
        for hold in self:
            if hold.mode == "quarantine":
                hold._move_back()
            hold.write(
                {
                    "state": "released",
                    "released_at": fields.Datetime.now(),
                    "released_by_id": self.env.uid,
                    "release_reason": reason,
                }
            )
            hold.message_post(body=reason)
        self.lot_id._mes_schedule_status()

    def _move_back(self):
        """What is still in quarantine goes back where the hold took it from."""
        self.ensure_one()
        for move in self.quarantine_move_ids.filtered(lambda m: m.state == "done").sorted("id"):
            quarantine = move.location_dest_id
            available = sum(
                self.env["stock.quant"]
                .search([("lot_id", "=", self.lot_id.id), ("location_id", "=", quarantine.id)])
                .mapped("quantity")
            )
            quantity = min(available, move.quantity)
            if quantity > 0:
                self.return_move_ids |= self._move(quarantine, move.location_id, quantity)
