from odoo import Command, api, fields, models
from odoo.tools import float_compare, float_is_zero

from ..exceptions import MesDataError


class MesRework(models.Model):
    """A unit (serial) or a quantity (of a lot) the MES sent to rework, and what became of
    it: reworked good (rebuilt, or back to stock) or scrapped.

    Recorded with Odoo's own stock documents: a move into the backend's rework location,
    then an unbuild and a rebuild order, a move back, or a scrap order.
    """

    _name = "mes.rework"
    _description = "Unit or quantity in rework"
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name", store=True)
    backend_id = fields.Many2one("mes.backend", "MES", required=True, readonly=True, index=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    production_id = fields.Many2one(
        "mrp.production",
        "Made by",
        readonly=True,
        index=True,
        help="The manufacturing order that made the unit or quantity.",
    )
    mes_order_ref = fields.Char("MES order", readonly=True, index=True)
    product_id = fields.Many2one("product.product", required=True, readonly=True, index=True)
    lot_id = fields.Many2one("stock.lot", "Lot/Serial", readonly=True, index=True)
    quantity = fields.Float(digits="Product Unit of Measure", readonly=True)
    uom_id = fields.Many2one(related="product_id.uom_id")
    reason_tag_id = fields.Many2one("stock.scrap.reason.tag", "Reason", readonly=True)
    state = fields.Selection(
        [("rework", "In rework"), ("good", "Reworked good"), ("scrapped", "Scrapped")],
        default="rework",
        required=True,
        readonly=True,
        index=True,
    )
    started_at = fields.Datetime("Sent to rework", readonly=True)
    ended_at = fields.Datetime("Out of rework", readonly=True)
    move_ids = fields.Many2many("stock.move", string="Stock moves", readonly=True)
    unbuild_ids = fields.Many2many("mrp.unbuild", string="Unbuild orders", readonly=True)
    rebuild_id = fields.Many2one("mrp.production", "Rebuild order", readonly=True)
    scrap_ids = fields.Many2many("stock.scrap", string="Scrap orders", readonly=True)
    message_ids = fields.Many2many("mes.message", string="MES messages", readonly=True)

    @api.depends("product_id", "lot_id", "quantity")
    def _compute_name(self):
        for rework in self:
            what = rework.lot_id.name or f"{rework.quantity:g} {rework.uom_id.name or ''}"
            rework.name = f"{rework.product_id.default_code or rework.product_id.name} {what}"

    # Sent to rework

    def _start(self, processor, message, production, data):
        """Move what the MES sent to rework into the rework location; one record per unit
        (serial) or one for the quantity."""
        backend = message.backend_id
        location = self._location(backend)
        product, parts = self._parts(processor, message, data)
        tag = backend._resolve("scrap_reason", data["reason"], "data.reason")
        reworks = self.browse()
        for lot, qty in parts:
            made_by = self._made_by(production, product, lot)
            source = self._stock_of(message, product, lot, qty, location)
            move = self._move(message, product, lot, qty, source, location)
            reworks |= self.create(
                {
                    "backend_id": backend.id,
                    "company_id": message.company_id.id,
                    "production_id": made_by.id,
                    "mes_order_ref": production._mes_ref(),
                    "product_id": product.id,
                    "lot_id": lot.id or False,
                    "quantity": qty,
                    "reason_tag_id": tag.id,
                    "started_at": message.occurred_at,
                    "move_ids": [Command.set(move.ids)],
                    "message_ids": [Command.set(message.ids)],
                }
            )
        message.rework_ids |= reworks
        message.move_ids |= reworks.move_ids
        # Shown (and reconciled) under the order that made it.
        message.production_id = reworks[-1:].production_id or production
        return reworks

    def _parts(self, processor, message, data):
        """The product a rework report names, and its parts: (lot, quantity) per serial
        unit, or the quantity (of its lot)."""
        product = processor._product(message, data["product"], "data.product")
        quantity = processor._quantity(message, data, product, product.uom_id)
        if product.tracking == "serial":
            return product, [
                (processor._lot(message, product, serial, "data.serials"), 1.0)
                for serial in processor._serials(product, data, quantity)
            ]
        return product, [(processor._lot(message, product, data.get("lot"), "data.lot"), quantity)]

    def _location(self, backend):
        if not backend.rework_location_id:
            raise MesDataError(
                "rework_location_missing",
                self.env._(
                    "MES backend %s has no rework location: set one (an internal location) "
                    "on the backend, then retry.",
                    backend.name,
                ),
            )
        return backend.rework_location_id

    def _made_by(self, production, product, lot):
        """The order whose output the unit or lot is: the last that produced it (a
        rebuild after an earlier rework included); of untracked output, the order's."""
        producers = self._producers(product, lot, production)
        if lot:
            if not producers:
                raise MesDataError(
                    "rework_not_produced",
                    self.env._(
                        "data: %(lot)s of %(product)s was not produced by a manufacturing "
                        "order: rework is recorded for what Odoo produced.",
                        lot=lot.name,
                        product=product.display_name,
                    ),
                    value=lot.name,
                )
            return producers[0][0]
        return producers[0][0] if producers else production

    def _producers(self, product, lot, production):
        """[(order, quantity it produced)], the latest first: of a lot, the orders whose
        output it was (rebuilds included); of untracked output, the done orders of the
        MES order ``production`` is part of."""
        if not lot:
            made = (
                production._mes_family()
                .filtered(lambda p: p.product_id == product and p.state == "done")
                .sorted("id", reverse=True)
            )
            return [
                (p, p.product_uom_id._compute_quantity(p.qty_produced, product.uom_id))
                for p in made
            ]
        lines = (
            self.env["stock.move.line"]
            .sudo()
            .search(
                [
                    ("product_id", "=", product.id),
                    ("lot_id", "=", lot.id),
                    ("state", "=", "done"),
                    ("location_id.usage", "=", "production"),
                    ("move_id.production_id", "!=", False),
                ],
                order="id desc",
            )
        )
        produced = {}
        for line in lines:
            production = line.move_id.production_id.with_env(self.env)
            produced[production] = produced.get(production, 0.0) + line.quantity_product_uom
        return list(produced.items())

    def _stock_of(self, message, product, lot, quantity, rework_location):
        """The internal location of the company holding ``quantity`` of the product (and
        lot), outside the rework location."""
        quants = (
            self.env["stock.quant"]
            .sudo()
            .search(
                [
                    ("product_id", "=", product.id),
                    ("lot_id", "=", lot.id or False),
                    ("location_id.usage", "=", "internal"),
                    ("location_id.company_id", "=", message.company_id.id),
                    "!",
                    ("location_id", "child_of", rework_location.id),
                    ("quantity", ">", 0),
                ],
                order="quantity desc",
            )
        )
        quant = quants.filtered(
            lambda q: (
                float_compare(q.quantity, quantity, precision_rounding=product.uom_id.rounding) >= 0
            )
        )[:1]
        if not quant:
            raise MesDataError(
                "rework_not_in_stock",
                self.env._(
                    "data: %(qty)s %(uom)s of %(product)s%(lot)s sent to rework, but Odoo has "
                    "%(have)s in stock outside rework (%(where)s). Rework is of what was "
                    "produced and posted (a unit is posted when reported, a lot when its order "
                    "or part is confirmed); in-process defects are reported as scrap.",
                    qty=quantity,
                    uom=product.uom_id.name,
                    product=product.display_name,
                    lot=f" {lot.name}" if lot else "",
                    have=sum(quants.mapped("quantity")),
                    where=", ".join(quants.location_id.mapped("display_name")) or "-",
                ),
                value=lot.name or product.default_code,
            )
        return quant.location_id

    def _move(self, message, product, lot, quantity, source, destination):
        """One done internal move of the product (and lot) between two locations."""
        move = self.env["stock.move"].create(
            {
                "name": self.env._("Rework: %s", message.order_ref or product.display_name),
                "origin": message.external_id,
                "product_id": product.id,
                "product_uom": product.uom_id.id,
                "product_uom_qty": quantity,
                "location_id": source.id,
                "location_dest_id": destination.id,
                "company_id": message.company_id.id,
                "move_line_ids": [
                    Command.create(
                        {
                            "product_id": product.id,
                            "product_uom_id": product.uom_id.id,
                            "lot_id": lot.id or False,
                            "quantity": quantity,
                            "location_id": source.id,
                            "location_dest_id": destination.id,
                            "picked": True,
                            "mes_message_id": message.id,
                        }
                    )
                ],
            }
        )
        move._action_confirm()
        move.picked = True
        move._action_done()
        return move

    # Out of rework

    def _complete(self, processor, message, production, data):
        """Good or scrapped: the units or quantity the MES names, in rework since it sent
        them there (the oldest first; a part of a quantity splits its record)."""
        backend = message.backend_id
        product, wanted = self._parts(processor, message, data)
        scrap_tag = (
            backend._resolve("scrap_reason", data["reason"], "data.reason")
            if data.get("reason")
            else None
        )
        done = self.browse()
        for lot, qty in wanted:
            for rework in self._in_rework(message, product, lot, qty):
                if data["result"] == "scrapped":
                    rework._scrap(message, production, scrap_tag or rework.reason_tag_id)
                else:
                    rework._good(processor, message, data)
                done |= rework
        done.write({"ended_at": message.occurred_at})
        for rework in done:
            rework.message_ids |= message
        message.rework_ids |= done
        message.production_id = done[-1:].production_id or production
        return done

    def _cost(self):
        """What the rework cost: the value of what it scrapped (the unit, or the parts it
        replaced) and of the new parts the rebuild consumed."""
        scrapped = sum(
            abs(v) for v in self.scrap_ids.move_ids.sudo().stock_valuation_layer_ids.mapped("value")
        )
        new_parts = 0.0
        for move in self.rebuild_id.move_raw_ids.filtered(lambda m: m.state == "done"):
            layers = move.sudo().stock_valuation_layer_ids
            quantity = abs(sum(layers.mapped("quantity")))
            if not quantity:
                continue
            unit = abs(sum(layers.mapped("value"))) / quantity
            bought = sum(
                line.quantity_product_uom
                for line in move.move_line_ids
                if line.location_id != self.backend_id.rework_location_id
            )
            new_parts += unit * bought
        return scrapped + new_parts

    def _in_rework(self, message, product, lot, quantity):
        reworks = self.search(
            [
                ("backend_id", "=", message.backend_id.id),
                ("company_id", "=", message.company_id.id),
                ("product_id", "=", product.id),
                ("lot_id", "=", lot.id or False),
                ("state", "=", "rework"),
            ],
            order="id",
        )
        rounding = product.uom_id.rounding
        taken = self.browse()
        left = quantity
        for rework in reworks:
            if float_is_zero(left, precision_rounding=rounding):
                break
            if float_compare(rework.quantity, left, precision_rounding=rounding) > 0:
                # Part of the quantity: the rest stays in rework as a record of its own.
                rework.copy(
                    {
                        "quantity": rework.quantity - left,
                        "started_at": rework.started_at,
                        "move_ids": [Command.set(rework.move_ids.ids)],
                        "message_ids": [Command.set(rework.message_ids.ids)],
                    }
                )
                rework.quantity = left
            left -= rework.quantity
            taken |= rework
        if float_compare(left, 0, precision_rounding=rounding) > 0:
            raise MesDataError(
                "not_in_rework",
                self.env._(
                    "data: %(qty)s %(uom)s of %(product)s%(lot)s reported out of rework, but "
                    "%(have)s is in rework. Report it sent to rework first.",
                    qty=quantity,
                    uom=product.uom_id.name,
                    product=product.display_name,
                    lot=f" {lot.name}" if lot else "",
                    have=quantity - left,
                ),
                value=lot.name or product.default_code,
            )
        return taken

    def _scrap(self, message, production, tag):
        self.ensure_one()
        scrap = self._new_scrap(
            message, self.product_id, self.quantity, self.product_id.uom_id, self.lot_id, tag
        )
        scrap.do_scrap()
        self.write({"state": "scrapped", "scrap_ids": [Command.link(scrap.id)]})
        message.scrap_ids |= scrap
        message.move_ids |= scrap.move_ids

    def _new_scrap(self, message, product, quantity, uom, lot, tag):
        """A scrap order, from the rework location, of what came out of this rework,
        under the order that made the unit."""
        return self.env["stock.scrap"].create(
            {
                "product_id": product.id,
                "scrap_qty": quantity,
                "product_uom_id": uom.id,
                "lot_id": lot.id or False,
                "location_id": self.backend_id.rework_location_id.id,
                "production_id": self.production_id.id or False,
                "company_id": self.company_id.id,
                "scrap_reason_tag_ids": [Command.set(tag.ids)],
                "origin": message.external_id,
            }
        )

    def _good(self, processor, message, data):
        self.ensure_one()
        stock = self.production_id.location_dest_id or self.move_ids[:1].location_id
        if self.backend_id.rework_method == "return" or not self.production_id.bom_id:
            if data.get("components"):
                raise MesDataError(
                    "rework_parts_not_recorded",
                    self.env._(
                        "data.components: parts replaced in rework, but the backend puts "
                        "reworked units back to stock as they are. Choose 'Unbuild and "
                        "rebuild order' on the backend to record them, then retry.",
                    ),
                )
            move = self._move(
                message,
                self.product_id,
                self.lot_id,
                self.quantity,
                self.backend_id.rework_location_id,
                stock,
            )
            self.write({"state": "good", "move_ids": [Command.link(move.id)]})
            message.move_ids |= move
            return
        self._rebuild(processor, message, data, stock)

    def _unbuild_sources(self):
        """[(order, quantity)] to unbuild the rework's quantity from: the orders that
        produced it, the latest first, each for at most what it produced (a lot made in
        two parts is unbuilt from both)."""
        producers = self._producers(self.product_id, self.lot_id, self.production_id)
        rounding = self.product_id.uom_id.rounding
        sources, left = [], self.quantity
        for production, produced in producers:
            if float_compare(left, 0, precision_rounding=rounding) <= 0:
                break
            take = min(left, produced)
            sources.append((production, take))
            left -= take
        if float_compare(left, 0, precision_rounding=rounding) > 0:
            raise MesDataError(
                "rework_not_produced",
                self.env._(
                    "%(qty)s %(uom)s of %(product)s%(lot)s cannot be unbuilt: the orders that "
                    "produced it made %(made)s.",
                    qty=self.quantity,
                    uom=self.product_id.uom_id.name,
                    product=self.product_id.display_name,
                    lot=f" {self.lot_id.name}" if self.lot_id else "",
                    made=self.quantity - left,
                ),
            )
        return sources

    def _rebuild(self, processor, message, data, stock):
        """Unbuild the unit in the rework location (its components come back with their
        lots), then make it again from them in a rebuild order, the parts the MES reports
        replaced (``components``) instead of the old ones, which are scrapped."""
        location = self.backend_id.rework_location_id
        made_by = self.production_id
        unbuilds = self.env["mrp.unbuild"]
        for source, quantity in self._unbuild_sources():
            unbuilds |= self.env["mrp.unbuild"].create(
                {
                    "product_id": self.product_id.id,
                    "product_qty": quantity,
                    "product_uom_id": self.product_id.uom_id.id,
                    "bom_id": source.bom_id.id,
                    "mo_id": source.id,
                    "lot_id": self.lot_id.id or False,
                    "location_id": location.id,
                    "location_dest_id": location.id,
                    "company_id": self.company_id.id,
                }
            )
        for unbuild in unbuilds:
            unbuild.action_unbuild()
        returned = unbuilds.produce_line_ids.filtered(
            lambda m: m.product_id != self.product_id
        ).move_line_ids
        replaced = {
            processor._product(message, part["product"], f"data.components[{index}].product")
            for index, part in enumerate(data.get("components") or [])
        }
        old = returned.filtered(lambda line: line.product_id in replaced)
        scraps = self.env["stock.scrap"]
        for line in old:
            scraps |= self._new_scrap(
                message,
                line.product_id,
                line.quantity,
                line.product_uom_id,
                line.lot_id,
                self.reason_tag_id,
            )
        scraps.do_scrap()
        rebuild = self.env["mrp.production"].create(
            {
                "product_id": self.product_id.id,
                "product_qty": self.quantity,
                "product_uom_id": self.product_id.uom_id.id,
                "bom_id": made_by.bom_id.id,
                "location_src_id": stock.id,
                "location_dest_id": stock.id,
                "company_id": self.company_id.id,
                "origin": self.env._("Rework of %s", self.name),
                "mes_rebuild": True,
            }
        )
        rebuild.action_confirm()
        # What the unit is made of now: the parts it kept, and those replaced.
        for line in returned - old:
            processor._consume_line(
                message, rebuild, line.product_id, line.lot_id, line.quantity, location
            )
        for index, part in enumerate(data.get("components") or []):
            processor._consume(message, rebuild, part, f"data.components[{index}]")
        processor._prepare_consumption(rebuild, self.backend_id, tolerance=False, owner="mes")
        rebuild.write(
            {
                "lot_producing_id": self.lot_id.id or False,
                "qty_producing": self.quantity,
            }
        )
        rebuild.with_context(
            skip_consumption=True, skip_backorder=True, skip_redirection=True
        ).button_mark_done()
        self.write(
            {
                "state": "good",
                "unbuild_ids": [Command.set(unbuilds.ids)],
                "rebuild_id": rebuild.id,
                "scrap_ids": [Command.link(scrap.id) for scrap in scraps],
            }
        )
        message.scrap_ids |= scraps
        message.move_ids |= (
            unbuilds.produce_line_ids
            | unbuilds.consume_line_ids
            | scraps.move_ids
            | rebuild.move_raw_ids
            | rebuild.move_finished_ids
        ).filtered(lambda m: m.state == "done")
