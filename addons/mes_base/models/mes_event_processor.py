from datetime import UTC, datetime, timedelta

from odoo import Command, api, fields, models
from odoo.tools import SQL, float_compare, float_is_zero, float_round, format_datetime

from ..exceptions import MesDataError, MesWaiting
from ..locking import lock_or_retry

# How far an MES time may be from Odoo's clock and still be the order's own.
CLOCK_SLACK_PAST = timedelta(days=1)
CLOCK_SLACK_FUTURE = timedelta(minutes=5)
# Finished units one report may post: each is an order of its own, posted in the
# report's transaction (a runaway list would hold the order for minutes).
MAX_UNITS_PER_REPORT = 500


def utc_naive(text):
    """ISO 8601 with zone (validated by the schema) -> naive UTC, as Odoo stores datetimes."""
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


def plant_time(env, moment, company, user=None):
    """``moment`` (naive UTC) as the people of a plant read it: in the time zone of
    ``user`` (an order's responsible), else of the company, else of whoever writes, with
    the zone named (a note is read by people of other zones too)."""
    tz = (user and user.tz) or company.partner_id.tz or env.user.tz or "UTC"
    return f"{format_datetime(env, moment, tz=tz, dt_format='medium')} ({tz})"


class MesEventProcessor(models.AbstractModel):
    """Applies MES events to Odoo with the standard mrp/stock methods.

    One method per event type, ``_process_<event_type>(message, event)``; other
    addons add event types by inheriting this model. A method raises
    :class:`MesDataError` when a person must act, :class:`MesWaiting` when
    something it needs is not there yet, and returns a short result text.
    """

    _name = "mes.event.processor"
    _description = "MES event processor"

    # Lookups

    def _production(self, message, event, lock=True, closed_ok=False):
        """The order an event reports on; ``closed_ok``: a done or cancelled one too (a
        quality result may come after the order is finished)."""
        production = message.production_id or message._named_order()
        if not production and not event.get("order_ref") and message.mes_order_id:
            raise MesWaiting(
                "unknown_mes_order",
                self.env._(
                    "unknown MES order %(id)s: no manufacturing order of %(company)s has this "
                    "MES order id yet. Adopt the order the MES runs under it (Adopt from MES), "
                    "or wait until the MES takes the order Odoo sent.",
                    id=message.mes_order_id,
                    company=message.company_id.name,
                ),
                message.mes_order_id,
            )
        if not production:
            raise MesWaiting(
                "unknown_order",
                self.env._(
                    "order %(ref)s: no such manufacturing order in %(company)s yet",
                    ref=event.get("order_ref") or message.order_ref,
                    company=message.company_id.name,
                ),
                event.get("order_ref") or message.order_ref,
            )
        # Units of serial output and partial confirmations split the order: the MES's
        # next report is for the open rest of it.
        production = production._mes_open_member()
        message.production_id = production
        if production.state == "draft":
            raise MesWaiting(
                "order_not_confirmed",
                self.env._("order %s to be confirmed", production.name),
                production.name,
            )
        if production.state in ("done", "cancel") and not closed_ok:
            raise MesDataError(
                "order_closed",
                self.env._(
                    "order_ref: order %(ref)s is already %(state)s; nothing can be posted on it. "
                    "Cancel this message if the MES sent it twice, or reopen the order.",
                    ref=production.name,
                    state=dict(production._fields["state"]._description_selection(self.env))[
                        production.state
                    ],
                ),
            )
        if lock:
            self._lock(production)
        return production

    def _lock(self, records):
        """Serialize the messages of one order; another worker on it -> try again shortly."""
        lock_or_retry(records)

    def _product(self, message, code, field):
        def by_reference(value):
            return self.env["product.product"].search(
                [
                    ("default_code", "=", value),
                    ("company_id", "in", [False, message.company_id.id]),
                ],
                limit=1,
            )

        return message.backend_id._resolve("product", code, field, by_reference)

    def _uom(self, message, code, product, field):
        """The Odoo unit an MES unit stands for; it must convert to the product's unit."""
        return self._unit(message, code, product.uom_id, field, product.display_name)

    def _unit(self, message, code, target, field, what):
        """The Odoo unit an MES unit stands for; it must convert to ``target`` (the unit of
        ``what``: a product, a quality question)."""
        category = target.category_id

        def by_name(value):
            return self.env["uom.uom"].search(
                [("name", "=ilike", value), ("category_id", "=", category.id)], limit=1
            )

        uom = message.backend_id._resolve("uom", code, field, by_name)
        if uom.category_id != category:
            raise MesDataError(
                "uom_category",
                self.env._(
                    "%(field)s: unit %(code)r (%(uom)s, %(cat)s) cannot be converted to the unit "
                    "of %(product)s (%(puom)s, %(pcat)s). Fix the unit mapping.",
                    field=field,
                    code=code,
                    uom=uom.name,
                    cat=uom.category_id.name,
                    product=what,
                    puom=target.name,
                    pcat=category.name,
                ),
            )
        return uom

    def _quantity(self, message, data, product, to_uom, field="data"):
        uom = self._uom(message, data["uom"], product, f"{field}.uom")
        return uom._compute_quantity(data["quantity"], to_uom, rounding_method="HALF-UP")

    def _operator(self, message, code, field):
        """The employee an MES operator badge or code stands for: mapped, or the
        employee of the company with that badge."""

        def by_badge(value):
            return (
                self.env["hr.employee"]
                .sudo()
                .search(
                    [("barcode", "=", value), ("company_id", "in", [False, message.company_id.id])],
                    limit=1,
                )
            )

        return message.backend_id._resolve("operator", code, field, by_badge)

    def _workcenter(self, message, code, field):
        def by_code(value):
            return self.env["mrp.workcenter"].search(
                [("code", "=", value), ("company_id", "in", [False, message.company_id.id])],
                limit=1,
            )

        return message.backend_id._resolve("workcenter", code, field, by_code)

    def _lot(self, message, product, name, field, create=False):
        if product.tracking == "none":
            if name:
                raise MesDataError(
                    "lot_not_tracked",
                    self.env._(
                        "%(field)s: lot %(lot)r given for %(product)s, which Odoo does not track "
                        "by lot. Turn on tracking for the product, or correct the message.",
                        field=field,
                        lot=name,
                        product=product.display_name,
                    ),
                )
            return self.env["stock.lot"]
        if not name:
            raise MesDataError(
                "lot_missing",
                self.env._(
                    "%(field)s: missing; %(product)s is tracked by %(tracking)s in Odoo.",
                    field=field,
                    product=product.display_name,
                    tracking=product.tracking,
                ),
            )
        lot = self.env["stock.lot"].search(
            [
                ("name", "=", name),
                ("product_id", "=", product.id),
                ("company_id", "in", [False, message.company_id.id]),
            ],
            limit=1,
        )
        if not lot and create:
            lot = self.env["stock.lot"].create(
                {"name": name, "product_id": product.id, "company_id": message.company_id.id}
            )
        if not lot:
            raise MesWaiting(
                "unknown_lot",
                self.env._(
                    "lot %(lot)s of %(product)s to be received in Odoo",
                    lot=name,
                    product=product.display_name,
                ),
                f"{name} ({product.default_code or product.display_name})",
            )
        return lot

    def _workorder(self, production, data, field="data.operation"):
        sequence = data.get("operation")
        if sequence is None:
            return self.env["mrp.workorder"]
        workorders = production.workorder_ids.filtered(
            lambda w: (w.operation_id.sequence if w.operation_id else None) == sequence
        )
        if not workorders:
            index = sequence - 1
            ordered = production.workorder_ids.sorted("id")
            workorders = ordered[index] if 0 <= index < len(ordered) else workorders
        if not workorders:
            raise MesDataError(
                "unknown_operation",
                self.env._(
                    "%(field)s: order %(ref)s has no operation %(seq)s (its operations: %(ops)s).",
                    field=field,
                    ref=production.name,
                    seq=sequence,
                    ops=", ".join(
                        f"{w.operation_id.sequence if w.operation_id else '?'} {w.name}"
                        for w in production.workorder_ids
                    )
                    or "-",
                ),
            )
        return workorders[0]

    # Order status

    def _process_order_started(self, message, event):
        production = self._production(message, event)
        started_at = utc_naive(event["occurred_at"])
        if production.state == "confirmed":
            # The standard way to put an order in progress is to record a quantity being
            # produced; with nothing produced yet, Odoo's own start is the first work order.
            first = production.workorder_ids.filtered(lambda w: w.state in ("ready", "waiting"))
            if first:
                first[:1].with_context(mes_no_timer=True).button_start()
        production.mes_floor_state = "started"
        # The order started when the shop floor started it, not when Odoo heard of it
        # (Odoo's own start writes the moment it is pressed).
        self._set_actual_dates(production, start=started_at)
        production._message_log(body=self._status_note(production, event, "started"))
        return self.env._("order %s started", production.name)

    def _process_order_held(self, message, event):
        production = self._production(message, event)
        production.workorder_ids.filtered(lambda w: w.state == "progress").button_pending()
        production.mes_hold = True
        production._message_log(body=self._status_note(production, event, "held"))
        return self.env._("order %s held", production.name)

    def _process_order_resumed(self, message, event):
        production = self._production(message, event)
        production.mes_hold = False
        production._message_log(body=self._status_note(production, event, "resumed"))
        return self.env._("order %s resumed", production.name)

    def _status_note(self, production, event, what):
        """What the shop floor did to the order, when, as its planner reads it."""
        data = event["data"]
        labels = {"reason": self.env._("reason"), "operator": self.env._("operator")}
        details = ", ".join(f"{labels[k]}: {data[k]}" for k in labels if data.get(k))
        return self.env._(
            "The shop floor %(what)s the order on %(when)s%(details)s.",
            what={
                "started": self.env._("started"),
                "held": self.env._("held"),
                "resumed": self.env._("resumed"),
            }[what],
            when=self._plant_time(production, utc_naive(event["occurred_at"])),
            details=f" ({details})" if details else "",
        )

    def _set_actual_dates(self, production, start=None, finish=None):
        """The MES's start and finish as the order's dates, when they are times the order
        can have run at: after it was created (a day's clock difference allowed), not
        in the future (a few minutes allowed), the finish after the start. Otherwise
        Odoo's own times stay (a wrong MES clock does not move the order).

        Written as columns: Odoo's write would also re-date the order's stock moves,
        done ones included, which are dated when Odoo posted them (as their valuation
        and accounting are).
        """
        earliest = production.create_date - CLOCK_SLACK_PAST
        latest = fields.Datetime.now() + CLOCK_SLACK_FUTURE
        dates = {}
        if start and earliest <= start <= latest:
            dates["date_start"] = start
        if finish and earliest <= finish <= latest:
            dates["date_finished"] = finish
            if (dates.get("date_start") or production.date_start) > finish:
                dates["date_start"] = finish
        if not dates:
            return
        production.flush_recordset()
        self.env.cr.execute(
            SQL(
                "UPDATE mrp_production SET %s WHERE id = %s",
                SQL(", ").join(
                    SQL("%s = %s", SQL.identifier(name), value) for name, value in dates.items()
                ),
                production.id,
            )
        )
        production.invalidate_recordset(list(dates))

    def _plant_time(self, production, moment):
        """``moment`` as the people of the order's plant read it (see plant_time)."""
        return plant_time(self.env, moment, production.company_id, production.user_id)

    # Material

    def _process_material_consumed(self, message, event):
        production = self._production(message, event)
        if message.backend_id.consumption_owner == "odoo":
            return self.env._(
                "kept, not posted: %s consumes the bill of materials when the order is "
                "confirmed finished (backend policy)",
                production.name,
            )
        return self._consume(message, production, event["data"])

    def _consume(self, message, production, data, field="data"):
        """Post a reported consumption (``data``: product, quantity, uom, lot or serials,
        operation) on the order's component move, as picked lines of ``message``."""
        product = self._product(message, data["product"], f"{field}.product")
        workorder = self._workorder(production, data, f"{field}.operation")
        moves = production.move_raw_ids.filtered(
            lambda m: m.product_id == product and m.state not in ("done", "cancel")
        )
        if workorder and len(moves) > 1:
            moves = moves.filtered(lambda m: m.workorder_id == workorder) or moves
        move = moves[:1]
        if not move:
            if not message.backend_id.accept_extra_components:
                raise MesDataError(
                    "component_not_in_order",
                    self.env._(
                        "%(field)s.product: %(product)s (MES code %(code)r) is not a component "
                        "of order %(ref)s. Allow components outside the BOM on the backend, or "
                        "correct the message.",
                        field=field,
                        product=product.display_name,
                        code=data["product"],
                        ref=production.name,
                    ),
                    value=data["product"],
                )
            move = self._add_component(production, product, workorder)
        uom = self._uom(message, data["uom"], product, f"{field}.uom")
        quantity = uom._compute_quantity(
            data["quantity"], move.product_uom, rounding_method="HALF-UP"
        )
        lines = self._report_lines(message, move, product, data, quantity, field=field)
        return self.env._(
            "%(qty)s %(uom)s of %(product)s%(lots)s consumed by %(ref)s",
            qty=quantity,
            uom=move.product_uom.name,
            product=product.display_name,
            lots=f" ({', '.join(lines.lot_id.mapped('name'))})" if lines.lot_id else "",
            ref=production.name,
        )

    def _add_component(self, production, product, workorder):
        before = production.move_raw_ids
        production.write(
            {
                "move_raw_ids": [
                    Command.create(
                        {
                            **production._get_move_raw_values(
                                product, 0.0, product.uom_id, workorder.operation_id.id
                            ),
                            "workorder_id": workorder.id or False,
                        }
                    )
                ]
            }
        )
        move = production.move_raw_ids - before
        if move.state == "draft":
            move = move._action_confirm()
        return move

    def _drop_unreported(self, moves):
        """What the MES reports replaces what Odoo put on the moves itself (reservations,
        or the bill of materials quantities a finished work order fills in)."""
        moves.move_line_ids.filtered(lambda ml: not ml.mes_message_id).unlink()

    def _report_lines(
        self, message, move, product, data, quantity, create_lots=False, field="data"
    ):
        """Record a reported quantity on the move's lines, per lot or serial, as picked.

        Consumed lots must exist in Odoo (else the message waits for them); produced
        ones (``create_lots``) are created.
        """
        self._drop_unreported(move)
        if product.tracking == "serial":
            serials = self._serials(product, data, quantity, field)
            lots = [
                self._lot(message, product, serial, f"{field}.serials", create=create_lots)
                for serial in serials
            ]
            lines = self._add_lines(message, move, [(lot, 1.0) for lot in lots])
        else:
            lot = self._lot(message, product, data.get("lot"), f"{field}.lot", create=create_lots)
            lines = self._add_lines(message, move, [(lot, quantity)])
        move.picked = True
        message.move_ids |= move
        return lines

    def _serials(self, product, data, quantity, field="data"):
        """The serials of a reported quantity of a serial-tracked product: one per unit,
        each once."""
        serials = list(data.get("serials") or ([data["lot"]] if data.get("lot") else []))
        if float_compare(len(serials), quantity, precision_digits=6):
            raise MesDataError(
                "serial_count",
                self.env._(
                    "%(field)s.serials: %(n)s serial numbers for a quantity of %(qty)s of "
                    "%(product)s; one serial per unit is needed.",
                    field=field,
                    n=len(serials),
                    qty=quantity,
                    product=product.display_name,
                ),
            )
        twice = sorted({serial for serial in serials if serials.count(serial) > 1})
        if twice:
            raise MesDataError(
                "serial_twice",
                self.env._(
                    "%(field)s.serials: serial %(serial)s of %(product)s is reported for two "
                    "units; each unit has a serial of its own.",
                    field=field,
                    serial=", ".join(twice),
                    product=product.display_name,
                ),
                value=twice[0],
            )
        return serials

    def _consume_line(self, message, production, product, lot, quantity, location):
        """A component of ``production`` consumed from ``location``, as a picked line."""
        move = production.move_raw_ids.filtered(
            lambda m: m.product_id == product and m.state not in ("done", "cancel")
        )[:1] or self._add_component(production, product, self.env["mrp.workorder"])
        self._add_lines(message, move, [(lot, quantity)], location)
        move.picked = True
        return move

    def _add_lines(self, message, move, lots_and_quantities, location=None):
        """One move line per lot and message: each posted quantity names its message."""
        return self.env["stock.move.line"].create(
            [
                {
                    "move_id": move.id,
                    "product_id": move.product_id.id,
                    "product_uom_id": move.product_uom.id,
                    "lot_id": lot.id or False,
                    "quantity": quantity,
                    "location_id": (location or self._source_location(move, lot)).id,
                    "location_dest_id": move.location_dest_id.id,
                    "picked": True,
                    "mes_message_id": message.id,
                }
                for lot, quantity in lots_and_quantities
            ]
        )

    def _source_location(self, move, lot):
        if lot:
            quant = self.env["stock.quant"].search(
                [
                    ("lot_id", "=", lot.id),
                    ("location_id", "child_of", move.location_id.id),
                    ("quantity", ">", 0),
                ],
                limit=1,
            )
            if quant:
                return quant.location_id
        return move.location_id

    def _process_output_produced(self, message, event):
        production = self._production(message, event)
        data = event["data"]
        product = self._product(message, data["product"], "data.product")
        if product == production.product_id:
            return self._finished_output(message, production, product, data)
        move = production.move_byproduct_ids.filtered(
            lambda m: m.product_id == product and m.state not in ("done", "cancel")
        )[:1]
        if not move:
            raise MesDataError(
                "output_not_in_order",
                self.env._(
                    "data.product: %(product)s (MES code %(code)r) is neither the product nor a "
                    "by-product of order %(ref)s.",
                    product=product.display_name,
                    code=data["product"],
                    ref=production.name,
                ),
            )
        if data.get("components"):
            raise MesDataError(
                "components_of_byproduct",
                self.env._(
                    "data.components: given for the by-product %(product)s of order %(ref)s; "
                    "components go into the order's product. Report them with its output, or "
                    "as consumption.",
                    product=product.display_name,
                    ref=production.name,
                ),
            )
        quantity = self._quantity(message, data, product, move.product_uom)
        self._report_lines(message, move, product, data, quantity, create_lots=True)
        return self.env._(
            "by-product: %(qty)s %(uom)s of %(product)s",
            qty=quantity,
            uom=move.product_uom.name,
            product=product.display_name,
        )

    def _finished_output(self, message, production, product, data):
        quantity = self._quantity(message, data, product, production.product_uom_id)
        components = data.get("components") or []
        if product.tracking == "serial":
            return self._produce_units(message, production, product, data, quantity)
        if components and message.backend_id.consumption_owner == "mes":
            for index, component in enumerate(components):
                self._consume(message, production, component, f"data.components[{index}]")
        if product.tracking == "lot":
            lot = self._lot(message, product, data.get("lot"), "data.lot", create=True)
            if production.lot_producing_id and production.lot_producing_id != lot:
                raise MesDataError(
                    "second_finished_lot",
                    self.env._(
                        "data.lot: order %(ref)s already produces lot %(lot)s; Odoo records one "
                        "finished lot per order, and %(new)r is another one.",
                        ref=production.name,
                        lot=production.lot_producing_id.name,
                        new=lot.name,
                    ),
                )
            production.lot_producing_id = lot
        production.mes_output_qty += quantity
        # Starting a work order proposes the whole remaining quantity as producing:
        # what counts is what the MES reported.
        production.qty_producing = production.qty_produced + production.mes_output_qty
        self._produce_started(production)
        return self.env._(
            "%(qty)s %(uom)s of %(product)s produced by %(ref)s",
            qty=quantity,
            uom=production.product_uom_id.name,
            product=product.display_name,
            ref=production.name,
        )

    # Serial-numbered output

    def _produce_units(self, message, production, product, data, quantity):
        """Finished units, each with its serial, posted as Odoo produces serials: one
        order per unit, split from the order (WH/MO/00012-001 makes SN-1, the rest goes
        on as WH/MO/00012-002), so that each serial's genealogy is its own: the
        components reported with the unit (``components``), or reported since the
        previous unit, are what Odoo links to it.

        The order's last planned unit is held until the MES confirms the order finished
        (or reports one more unit, which raises the order's quantity): what the MES
        reports after it is consumed by it.
        """
        serials = self._serials(product, data, quantity)
        if len(serials) > MAX_UNITS_PER_REPORT:
            raise MesDataError(
                "too_many_units",
                self.env._(
                    "data.serials: %(n)s units in one report; at most %(max)s are posted at "
                    "once (each is an order of its own). Report the units in smaller batches.",
                    n=len(serials),
                    max=MAX_UNITS_PER_REPORT,
                ),
            )
        components = data.get("components") or []
        if components and len(serials) > 1:
            raise MesDataError(
                "unit_components",
                self.env._(
                    "data.components: given for %(n)s units (%(serials)s); components are "
                    "those of one unit. Report each unit with its serial and its components.",
                    n=len(serials),
                    serials=", ".join(serials),
                ),
            )
        lots = [self._new_unit(message, production, product, serial) for serial in serials]
        backend = message.backend_id
        unit = product.uom_id._compute_quantity(1.0, production.product_uom_id)
        member = production
        for lot in lots:
            member = self._post_held_unit(message, member, unit)
            if backend.consumption_owner == "mes":
                for index, component in enumerate(components):
                    self._consume(message, member, component, f"data.components[{index}]")
            member.write(
                {
                    "lot_producing_id": lot.id,
                    "mes_output_qty": unit,
                    "qty_producing": member.qty_produced + unit,
                }
            )
            self._produce_started(member)
            last = member
            if self._left_to_produce(member) > 0:
                member = self._post_unit(message, member, message.occurred_at)
        # The report is shown under the order its last unit is (or waits) on.
        message.production_id = last
        return self.env._(
            "%(n)s unit(s) of %(product)s produced: %(serials)s",
            n=len(serials),
            product=product.display_name,
            serials=", ".join(serials),
        )

    def _left_to_produce(self, production):
        """-1, 0 or 1: whether the order has more to produce than its reported output."""
        return float_compare(
            production.product_qty,
            production.qty_producing,
            precision_rounding=production.product_uom_id.rounding,
        )

    def _new_unit(self, message, production, product, serial):
        """The lot of a unit's serial: new, or one that is not in stock and was not
        produced before (unless unbuilt or scrapped since, as Odoo allows)."""
        lot = self.env["stock.lot"].search(
            [
                ("name", "=", serial),
                ("product_id", "=", product.id),
                ("company_id", "in", [False, message.company_id.id]),
            ],
            limit=1,
        )
        if not lot:
            return self.env["stock.lot"].create(
                {"name": serial, "product_id": product.id, "company_id": message.company_id.id}
            )
        held = production.lot_producing_id == lot and production.mes_output_qty
        if held:
            raise MesDataError(
                "serial_twice",
                self.env._(
                    "data.serials: serial %(serial)s of %(product)s is already the unit "
                    "%(ref)s produced; it is reported again for another unit. Each unit has a "
                    "serial of its own.",
                    serial=serial,
                    product=product.display_name,
                    ref=production.name,
                ),
                value=serial,
            )
        quant = (
            self.env["stock.quant"]
            .sudo()
            .search(
                [
                    ("lot_id", "=", lot.id),
                    ("location_id.usage", "=", "internal"),
                    ("quantity", ">", 0),
                ],
                limit=1,
            )
        )
        if quant:
            raise MesDataError(
                "serial_in_stock",
                self.env._(
                    "data.serials: serial %(serial)s of %(product)s is already in stock at "
                    "%(location)s; a unit just produced cannot carry it. Correct the serial "
                    "in the MES and send the report again.",
                    serial=serial,
                    product=product.display_name,
                    location=quant.location_id.display_name,
                ),
                value=serial,
            )
        if production._is_finished_sn_already_produced(lot):
            producer = (
                self.env["stock.move.line"]
                .sudo()
                .search(
                    [
                        ("lot_id", "=", lot.id),
                        ("state", "=", "done"),
                        ("location_id.usage", "=", "production"),
                    ],
                    order="id desc",
                    limit=1,
                )
            )
            raise MesDataError(
                "serial_produced",
                self.env._(
                    "data.serials: serial %(serial)s of %(product)s was already produced "
                    "(%(ref)s); a serial is produced once, unless the unit is unbuilt or "
                    "scrapped first.",
                    serial=serial,
                    product=product.display_name,
                    ref=producer.move_id.production_id.name or producer.reference or "?",
                ),
                value=serial,
            )
        return lot

    def _post_held_unit(self, message, production, unit):
        """A unit waiting on the order's last planned quantity is posted before another
        one is made: one more unit than planned raises the order's quantity."""
        if not (production.lot_producing_id and production.mes_output_qty):
            return production
        if self._left_to_produce(production) <= 0:
            self.env["change.production.qty"].create(
                {"mo_id": production.id, "product_qty": production.product_qty + unit}
            ).change_prod_qty()
            production._message_log(
                body=self.env._(
                    "The MES produced more units than planned: the quantity is now %s.",
                    production.product_qty,
                )
            )
        return self._post_unit(message, production, production.date_finished)

    def _post_unit(self, message, production, finished_at):
        """Post the order's held unit; the rest of the order goes on as its backorder, to
        the MES the same order. Returns that backorder (or the order, when nothing is left)."""
        self._prepare_consumption(production, message.backend_id, tolerance=False)
        return self._mark_done(message, production, finished_at, rest="continue")

    def _mark_done(self, message, production, finished_at, rest):
        """Post the order's reported output and consumption with Odoo's own mark done.

        ``rest``: what becomes of a quantity left to produce: ``continue`` (a backorder
        the MES goes on reporting on as the same order), ``backorder`` (a backorder for
        the planners, not bound to the MES) or ``close`` (none). Returns the order the
        MES reports on next (the continuing backorder, or the order).
        """
        before = production.move_raw_ids | production.move_finished_ids
        left = self._left_to_produce(production) > 0
        production.with_context(
            skip_backorder=True,
            mo_ids_to_backorder=production.ids if left and rest != "close" else [],
            skip_consumption=True,
            skip_redirection=True,
            mes_continue_order=rest == "continue",
        ).button_mark_done()
        production.mes_floor_state = "completed"
        # Finished when the shop floor finished it (Odoo writes the moment it posts).
        self._set_actual_dates(production, finish=finished_at)
        production.mes_output_qty = 0.0
        message.move_ids |= (
            before | production.move_raw_ids | production.move_finished_ids
        ).filtered(lambda m: m.state == "done")
        return production._mes_open_member() if rest == "continue" else production

    def _produce_started(self, production):
        if production.state == "confirmed":
            production.state = "progress"

    def _prepare_consumption(self, production, backend, tolerance=True, owner=None):
        """The components the order posts: the bill of materials for what it produced
        (Odoo owns consumption), or exactly what the MES reported (the MES owns it,
        within the backend's tolerance when ``tolerance``). ``owner``: who owns it, if
        not as the backend says."""
        if (owner or backend.consumption_owner) == "odoo":
            production._set_qty_producing()
        else:
            open_moves = (production.move_raw_ids | production.move_byproduct_ids).filtered(
                lambda m: m.state not in ("done", "cancel")
            )
            # The MES owns material: only what it reported is posted.
            self._drop_unreported(open_moves)
            for move in open_moves.filtered(lambda m: not m.move_line_ids):
                move.picked = False
                move.manual_consumption = True
            if tolerance:
                self._check_consumption(production, backend)
        self._check_lots(production)

    def _process_order_completed(self, message, event):
        data = event["data"]
        final = data.get("final", True)
        production = self._production(message, event, closed_ok=final)
        if production.state in ("done", "cancel"):
            return self._completed_before(message, production)
        if production.product_id.tracking == "serial":
            return self._complete_units(message, production, event, final)
        backend = message.backend_id
        if "quantity" in data:
            product = production.product_id
            quantity = self._quantity(message, data, product, production.product_uom_id)
            if data.get("lot") and product.tracking == "lot":
                production.lot_producing_id = self._lot(
                    message, product, data["lot"], "data.lot", create=True
                )
            production.qty_producing = quantity + production.qty_produced
        else:
            production.qty_producing = production.qty_produced + production.mes_output_qty
        if float_is_zero(
            production.qty_producing, precision_rounding=production.product_uom_id.rounding
        ):
            raise MesDataError(
                "nothing_produced",
                self.env._(
                    "data.quantity: order %s is confirmed as finished but no produced quantity "
                    "was reported, neither here nor by output events.",
                    production.name,
                ),
            )
        if production.product_id.tracking == "lot" and not production.lot_producing_id:
            raise MesDataError(
                "lot_missing",
                self.env._(
                    "data.lot: %(product)s is tracked by lot; the MES must report the finished "
                    "lot of order %(ref)s (here or in an output event).",
                    product=production.product_id.display_name,
                    ref=production.name,
                ),
            )
        self._prepare_consumption(production, backend)
        finished_at = utc_naive(event["occurred_at"])
        if not final:
            # A shift's part: posted now, the rest goes on as the same MES order.
            rest = self._mark_done(message, production, finished_at, rest="continue")
            production.mes_closed_by_part = rest == production
            return self.env._(
                "part of order %(ref)s posted: %(qty)s %(uom)s; %(rest)s goes on",
                ref=production.name,
                qty=production.qty_produced,
                uom=production.product_uom_id.name,
                rest=rest.name if rest != production else self.env._("nothing"),
            )
        if not backend.close_on_completion:
            return self._leave_open(production, event)
        self._mark_done(
            message,
            production,
            finished_at,
            rest="backorder" if backend.backorder_policy == "always" else "close",
        )
        return self.env._(
            "order %(ref)s done: %(qty)s %(uom)s",
            ref=production.name,
            qty=production.qty_produced,
            uom=production.product_uom_id.name,
        )

    def _leave_open(self, production, event):
        self._produce_started(production)
        production.mes_floor_state = "completed"
        production._message_log(
            body=self.env._(
                "The shop floor finished the order on %(when)s with %(qty)s %(uom)s; "
                "a planner closes it.",
                when=self._plant_time(production, utc_naive(event["occurred_at"])),
                qty=production.qty_producing,
                uom=production.product_uom_id.name,
            )
        )
        return self.env._("order %s finished, left open for a planner", production.name)

    def _completed_before(self, message, production):
        """A final confirmation after the order's partial confirmations posted all of it."""
        family = production._mes_family()
        if family[-1:].mes_closed_by_part and all(p.state in ("done", "cancel") for p in family):
            return self.env._(
                "order %(ref)s: nothing left to post, its parts (%(parts)s) posted all of it",
                ref=production._mes_ref(),
                parts=", ".join(family.mapped("name")),
            )
        # Not a rest of one: a closed order, as for any report.
        return self._production(message, {"order_ref": production.name})

    def _complete_units(self, message, production, event, final):
        """Confirmation of an order of serial-numbered units: each unit was posted as it
        was reported; the last one, held, is posted now."""
        backend = message.backend_id
        data = event["data"]
        family = production._mes_family()
        done = (family - production).filtered(lambda p: p.state == "done")
        held = bool(production.lot_producing_id and production.mes_output_qty)
        made = sum(
            p.product_uom_id._compute_quantity(p.qty_produced, production.product_uom_id)
            for p in done
        ) + (production.mes_output_qty if held else 0.0)
        if final and "quantity" in data:
            quantity = self._quantity(
                message, data, production.product_id, production.product_uom_id
            )
            if float_compare(quantity, made, precision_rounding=production.product_uom_id.rounding):
                raise MesDataError(
                    "serial_completion_quantity",
                    self.env._(
                        "data.quantity: order %(ref)s is confirmed with %(qty)s %(uom)s of "
                        "%(product)s, but the MES reported %(made)s unit(s) with their serials. "
                        "A serial-numbered unit is posted when the MES reports its serial: "
                        "report the missing units, or correct the quantity.",
                        ref=production._mes_ref(),
                        qty=quantity,
                        uom=production.product_uom_id.name,
                        product=production.product_id.display_name,
                        made=made,
                    ),
                )
        if not final:
            return self.env._(
                "part of order %(ref)s confirmed: %(made)s unit(s) posted as reported",
                ref=production._mes_ref(),
                made=made,
            )
        if not backend.close_on_completion:
            return self._leave_open(production, event)
        finished_at = utc_naive(event["occurred_at"])
        rest = "backorder" if backend.backorder_policy == "always" else "close"
        if held:
            self._prepare_consumption(production, backend, tolerance=False)
            self._mark_done(message, production, finished_at, rest=rest)
            return self.env._(
                "order %(ref)s done: %(made)s unit(s)", ref=production._mes_ref(), made=made
            )
        if not done:
            raise MesDataError(
                "nothing_produced",
                self.env._(
                    "data: order %s is confirmed as finished but no unit was reported.",
                    production.name,
                ),
            )
        self._close_short(message, production, made, rest)
        return self.env._(
            "order %(ref)s done: %(made)s unit(s); the rest, %(rest)s, %(what)s",
            ref=production._mes_ref(),
            made=made,
            rest=production.name,
            what=self.env._("left for the planners")
            if rest == "backorder"
            else self.env._("cancelled"),
        )

    def _close_short(self, message, production, made, rest):
        """The MES finished an order of units short: its open rest has nothing to post.
        It is cancelled, or left to the planners as an order of its own (backorder
        policy), without telling the MES (which closed it)."""
        reported = (production.move_raw_ids | production.move_byproduct_ids).move_line_ids.filtered(
            lambda line: line.mes_message_id and line.state not in ("done", "cancel")
        )
        if reported:
            raise MesDataError(
                "consumption_without_unit",
                self.env._(
                    "order %(ref)s is confirmed finished after its last unit, but the MES "
                    "reported %(products)s consumed after that unit (%(messages)s): no unit "
                    "carries it. Have the MES report it with a unit, or cancel those reports.",
                    ref=production.name,
                    products=", ".join(reported.product_id.mapped("display_name")),
                    messages=", ".join(reported.mes_message_id.mapped("external_id")),
                ),
            )
        production._message_log(
            body=self.env._(
                "The MES finished its order %(ref)s with %(made)s unit(s): this rest of it is "
                "no longer run by the MES.",
                ref=production._mes_ref(),
                made=made,
            )
        )
        production.sudo().write(
            {
                "mes_state": "not_sent",
                "mes_order_id": False,
                "mes_order_ref": False,
                "mes_backend_id": False,
                "mes_revision": 0,
                "mes_document": False,
                "mes_floor_state": False,
            }
        )
        message.production_id = production
        if rest == "close":
            production.action_cancel()

    def _check_consumption(self, production, backend):
        """Reported consumption against the BOM for the quantity produced, within tolerance."""
        factor = production.qty_producing / (production.product_qty or 1.0)
        problems = []
        for move in production.move_raw_ids.filtered(
            lambda m: m.bom_line_id and m.state not in ("done", "cancel")
        ):
            expected = float_round(
                move.product_uom_qty * factor, precision_rounding=move.product_uom.rounding
            )
            reported = move.quantity if move.picked else 0.0
            if float_is_zero(expected, precision_rounding=move.product_uom.rounding):
                continue
            ratio = (reported - expected) / expected * 100.0
            if ratio > backend.tolerance_over or -ratio > backend.tolerance_under:
                problems.append(
                    self.env._(
                        "%(product)s: %(reported)s %(uom)s reported, %(expected)s expected "
                        "(%(ratio)+.1f%%)",
                        product=move.product_id.display_name,
                        reported=reported,
                        expected=expected,
                        uom=move.product_uom.name,
                        ratio=ratio,
                    )
                )
        if problems:
            raise MesDataError(
                "consumption_tolerance",
                self.env._(
                    "Consumption of order %(ref)s is outside the tolerance (+%(over)s%% / "
                    "-%(under)s%%): %(problems)s. Have the MES report the missing consumption, "
                    "correct the messages, or widen the tolerance on the backend; then retry.",
                    ref=production.name,
                    over=backend.tolerance_over,
                    under=backend.tolerance_under,
                    problems="; ".join(problems),
                ),
            )

    def _check_lots(self, production):
        missing = production.move_raw_ids.filtered(
            lambda m: (
                m.has_tracking != "none"
                and m.picked
                and m.state not in ("done", "cancel")
                and float_compare(
                    sum(m.move_line_ids.filtered("lot_id").mapped("quantity")),
                    m.quantity,
                    precision_rounding=m.product_uom.rounding,
                )
                < 0
            )
        )
        if missing:
            raise MesDataError(
                "lot_missing",
                self.env._(
                    "Component %(products)s of order %(ref)s is tracked but no lot is reserved or "
                    "reported for it: receive stock with a lot, or have the MES report the "
                    "consumed lots.",
                    products=", ".join(missing.product_id.mapped("display_name")),
                    ref=production.name,
                ),
            )

    # Rework

    def _process_rework_started(self, message, event):
        production = self._production(message, event, closed_ok=True)
        self._post_unit_now(message, production, event["data"])
        reworks = self.env["mes.rework"]._start(self, message, production, event["data"])
        return self.env._(
            "sent to rework (%(reason)s): %(what)s",
            reason=event["data"]["reason"],
            what=", ".join(reworks.mapped("name")),
        )

    def _process_rework_completed(self, message, event):
        production = self._production(message, event, closed_ok=True)
        data = event["data"]
        reworks = self.env["mes.rework"]._complete(self, message, production, data)
        return self.env._(
            "out of rework, %(result)s: %(what)s",
            result=dict(reworks._fields["state"]._description_selection(self.env))[
                reworks[:1].state
            ],
            what=", ".join(reworks.mapped("name")),
        )

    def _post_unit_now(self, message, production, data):
        """A unit the MES sends to rework while it is held on the order (its last
        planned one) is posted at once: rework is of what was produced. The order stays
        open for one unit more (a replacement the MES may make); the final confirmation
        closes it short when none comes."""
        if not (
            production.state not in ("done", "cancel")
            and production.product_id.tracking == "serial"
            and production.mes_output_qty
            and production.lot_producing_id.name in (data.get("serials") or [data.get("lot")])
        ):
            return
        unit = production.product_id.uom_id._compute_quantity(1.0, production.product_uom_id)
        self._post_held_unit(message, production, unit)

    # Scrap

    def _process_scrap_reported(self, message, event):
        production = self._production(message, event)
        data = event["data"]
        product = self._product(message, data["product"], "data.product")
        tag = message.backend_id._resolve("scrap_reason", data["reason"], "data.reason")
        workorder = self._workorder(production, data)
        uom = self._uom(message, data["uom"], product, "data.uom")
        lot = self._lot(message, product, data.get("lot"), "data.lot")
        scrap = self.env["stock.scrap"].create(
            {
                "product_id": product.id,
                "scrap_qty": data["quantity"],
                "product_uom_id": uom.id,
                "lot_id": lot.id or False,
                "production_id": production.id,
                "workorder_id": workorder.id or False,
                "company_id": production.company_id.id,
                "scrap_reason_tag_ids": [Command.set(tag.ids)],
                "origin": message.external_id,
            }
        )
        # do_scrap, not action_validate: the shop floor already scrapped it, so no
        # "insufficient quantity" question; a shortage shows as negative stock.
        scrap.do_scrap()
        message.scrap_ids |= scrap
        message.move_ids |= scrap.move_ids
        return self.env._(
            "%(qty)s %(uom)s of %(product)s scrapped (%(reason)s): %(scrap)s",
            qty=data["quantity"],
            uom=uom.name,
            product=product.display_name,
            reason=tag.name,
            scrap=scrap.name,
        )

    # Operations and time

    def _productive_loss(self):
        return self.env["mrp.workcenter.productivity.loss"].search(
            [("loss_type", "=", "productive")], limit=1
        )

    def _setup_loss(self):
        return (
            self.env.ref("mrp.block_reason2", raise_if_not_found=False) or self._productive_loss()
        )

    def _process_operation_progress(self, message, event):
        return self._operation_report(message, event, finish=False)

    def _process_operation_completed(self, message, event):
        return self._operation_report(message, event, finish=True)

    def _operation_report(self, message, event, finish):
        production = self._production(message, event)
        data = event["data"]
        workorder = self._workorder(production, data)
        if not workorder:
            raise MesDataError(
                "operation_missing", self.env._("data.operation: missing for an operation event.")
            )
        if data.get("resource"):
            workcenter = self._workcenter(message, data["resource"], "data.resource")
            if workcenter != workorder.workcenter_id:
                workorder.workcenter_id = workcenter
        if workorder.state == "done":
            raise MesDataError(
                "operation_closed",
                self.env._(
                    "data.operation: operation %(op)s of order %(ref)s is already finished.",
                    op=workorder.name,
                    ref=production.name,
                ),
            )
        if workorder.state in ("pending", "waiting", "ready"):
            workorder.with_context(mes_no_timer=True).button_start()
        ended = utc_naive(data.get("ended_at") or event["occurred_at"])
        run = timedelta(minutes=data.get("run_minutes") or 0)
        setup = timedelta(minutes=data.get("setup_minutes") or 0)
        started = utc_naive(data["started_at"]) if data.get("started_at") else ended - run - setup
        logs = self.env["mrp.workcenter.productivity"]
        description = self.env._(
            "MES %(msg)s%(worker)s",
            msg=message.external_id,
            worker=f", {data['worker']}" if data.get("worker") else "",
        )
        labor = self.env["mes.labor"]._record(
            self, message, workorder, data.get("operators") or [], ended
        )
        # Odoo's time logs name one user: the operator's, when one operator did the work.
        user = labor.user_id if len(labor) == 1 else self.env["res.users"]
        if setup:
            logs |= self._time_log(
                workorder, self._setup_loss(), started, started + setup, description, user
            )
        if run or not setup:
            logs |= self._time_log(
                workorder, self._productive_loss(), started + setup, ended, description, user
            )
        uom = production.product_uom_id
        if data.get("good_quantity"):
            good = self._uom(message, data["uom"], production.product_id, "data.uom")
            workorder.qty_produced += good._compute_quantity(data["good_quantity"], uom)
        if data.get("reject_quantity"):
            unit = self._uom(message, data["uom"], production.product_id, "data.uom")
            workorder.mes_reject_qty += unit._compute_quantity(data["reject_quantity"], uom)
        message.productivity_ids |= logs
        operators = labor and self.env._(
            ", labor: %s",
            ", ".join(f"{line.employee_id.sudo().name} {line.minutes:g} min" for line in labor),
        )
        if finish:
            workorder.with_context(mes_no_timer=True).button_finish()
        return self.env._(
            "operation %(op)s of %(ref)s: %(state)s, %(minutes).1f min logged%(labor)s",
            op=workorder.name,
            ref=production.name,
            state=workorder.state,
            minutes=sum(logs.mapped("duration")),
            labor=operators or "",
        )

    def _time_log(self, workorder, loss, start, end, description, user=None):
        return self.env["mrp.workcenter.productivity"].create(
            {
                **({"user_id": user.id} if user else {}),
                "workorder_id": workorder.id,
                "workcenter_id": workorder.workcenter_id.id,
                "company_id": workorder.company_id.id,
                "loss_id": loss.id,
                "date_start": start,
                "date_end": max(start, end),
                "description": description,
                "mes_wall_clock": True,
            }
        )

    # Downtime

    def _link_order(self, message, event):
        """Downtime may name the order it interrupted: link it, without waiting for it."""
        if message.order_ref and not message.production_id:
            message.production_id = message._named_order()

    def _process_downtime_started(self, message, event):
        self._link_order(message, event)
        data = event["data"]
        workcenter = self._workcenter(message, data["resource"], "data.resource")
        loss = message.backend_id._resolve("downtime_reason", data["reason"], "data.reason")
        existing = self._downtime(message, data)
        if existing:
            raise MesDataError(
                "downtime_duplicate",
                self.env._(
                    "data.downtime_id: downtime %(id)r of %(wc)s was already started by another "
                    "message.",
                    id=data["downtime_id"],
                    wc=workcenter.display_name,
                ),
            )
        log = self.env["mrp.workcenter.productivity"].create(
            {
                "workcenter_id": workcenter.id,
                "company_id": workcenter.company_id.id or message.company_id.id,
                "loss_id": loss.id,
                "date_start": utc_naive(data["started_at"]),
                "description": data.get("comment") or loss.name,
                "mes_backend_id": message.backend_id.id,
                "mes_downtime_ref": data["downtime_id"],
                "mes_reason_code": data["reason"],
            }
        )
        message.productivity_ids |= log
        return self.env._(
            "%(wc)s down since %(start)s: %(reason)s",
            wc=workcenter.name,
            start=plant_time(self.env, log.date_start, workcenter.company_id or message.company_id),
            reason=loss.name,
        )

    def _process_downtime_ended(self, message, event):
        self._link_order(message, event)
        data = event["data"]
        workcenter = self._workcenter(message, data["resource"], "data.resource")
        log = self._downtime(message, data)
        if not log:
            raise MesWaiting(
                "downtime_not_started",
                self.env._(
                    "the start of downtime %(id)s on %(wc)s",
                    id=data["downtime_id"],
                    wc=workcenter.name,
                ),
                data["downtime_id"],
            )
        if log.date_end:
            raise MesDataError(
                "downtime_closed",
                self.env._(
                    "data.downtime_id: downtime %(id)r of %(wc)s already ended on %(end)s.",
                    id=data["downtime_id"],
                    wc=workcenter.name,
                    end=plant_time(
                        self.env, log.date_end, workcenter.company_id or message.company_id
                    ),
                ),
            )
        end = utc_naive(data["ended_at"])
        if end < log.date_start:
            raise MesDataError(
                "downtime_end_before_start",
                self.env._(
                    "data.ended_at: %(end)s is before the downtime's start, %(start)s.",
                    end=data["ended_at"],
                    start=plant_time(
                        self.env, log.date_start, workcenter.company_id or message.company_id
                    ),
                ),
            )
        if data.get("reason"):
            log.loss_id = message.backend_id._resolve(
                "downtime_reason", data["reason"], "data.reason"
            )
            log.mes_reason_code = data["reason"]
        log.date_end = end
        message.productivity_ids |= log
        return self.env._(
            "%(wc)s ran again on %(end)s after %(minutes).1f min",
            wc=workcenter.name,
            end=plant_time(self.env, end, workcenter.company_id or message.company_id),
            minutes=log.duration,
        )

    def _downtime(self, message, data):
        return self.env["mrp.workcenter.productivity"].search(
            [
                ("mes_backend_id", "=", message.backend_id.id),
                ("mes_downtime_ref", "=", data["downtime_id"]),
            ],
            limit=1,
        )

    @api.model
    def _event_types(self):
        """Event types that have a processor."""
        return [name[len("_process_") :] for name in dir(self) if name.startswith("_process_")]
