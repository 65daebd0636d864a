from datetime import UTC, datetime, timedelta

from odoo import Command, api, fields, models
from odoo.tools import SQL, float_compare, float_is_zero, float_round, format_datetime

from ..exceptions import MesDataError, MesWaiting
from ..locking import lock_or_retry

# How far an MES time may be from Odoo's clock and still be the order's own.
CLOCK_SLACK_PAST = timedelta(days=1)
CLOCK_SLACK_FUTURE = timedelta(minutes=5)


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
        data = event["data"]
        if message.backend_id.consumption_owner == "odoo":
            return self.env._(
                "kept, not posted: %s consumes the bill of materials when the order is "
                "confirmed finished (backend policy)",
                production.name,
            )
        product = self._product(message, data["product"], "data.product")
        workorder = self._workorder(production, data)
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
                        "data.product: %(product)s (MES code %(code)r) is not a component of order "
                        "%(ref)s. Allow components outside the BOM on the backend, or correct the "
                        "message.",
                        product=product.display_name,
                        code=data["product"],
                        ref=production.name,
                    ),
                    value=data["product"],
                )
            move = self._add_component(production, product, workorder)
        quantity = self._quantity(message, data, product, move.product_uom)
        lines = self._report_lines(message, move, product, data, quantity)
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

    def _report_lines(self, message, move, product, data, quantity, create_lots=False):
        """Record a reported quantity on the move's lines, per lot or serial, as picked.

        Consumed lots must exist in Odoo (else the message waits for them); produced
        ones (``create_lots``) are created.
        """
        self._drop_unreported(move)
        serials = data.get("serials") or []
        if product.tracking == "serial":
            if not serials and data.get("lot"):
                serials = [data["lot"]]
            if len(serials) != quantity:
                raise MesDataError(
                    "serial_count",
                    self.env._(
                        "data.serials: %(n)s serial numbers for a quantity of %(qty)s of "
                        "%(product)s; one serial per unit is needed.",
                        n=len(serials),
                        qty=quantity,
                        product=product.display_name,
                    ),
                )
            lots = [
                self._lot(message, product, serial, "data.serials", create=create_lots)
                for serial in serials
            ]
            lines = self._add_lines(message, move, [(lot, 1.0) for lot in lots])
        else:
            lot = self._lot(message, product, data.get("lot"), "data.lot", create=create_lots)
            lines = self._add_lines(message, move, [(lot, quantity)])
        move.picked = True
        message.move_ids |= move
        return lines

    def _add_lines(self, message, move, lots_and_quantities):
        """One move line per lot and message: each posted quantity names its message."""
        return self.env["stock.move.line"].create(
            [
                {
                    "move_id": move.id,
                    "product_id": move.product_id.id,
                    "product_uom_id": move.product_uom.id,
                    "lot_id": lot.id or False,
                    "quantity": quantity,
                    "location_id": self._source_location(move, lot).id,
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
        if product.tracking == "serial":
            raise MesDataError(
                "serial_output_unsupported",
                self.env._(
                    "data.product: %(product)s is tracked by serial number; Odoo produces one "
                    "serial per manufacturing order. Split the order per unit, or track the "
                    "product by lot.",
                    product=product.display_name,
                ),
            )
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

    def _produce_started(self, production):
        if production.state == "confirmed":
            production.state = "progress"

    def _process_order_completed(self, message, event):
        production = self._production(message, event)
        backend = message.backend_id
        data = event["data"]
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
        if backend.consumption_owner == "odoo":
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
            self._check_consumption(production, backend)
        self._check_lots(production)
        if not backend.close_on_completion:
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
        before = production.move_raw_ids | production.move_finished_ids
        to_backorder = production.ids if backend.backorder_policy == "always" else []
        production.with_context(
            skip_backorder=True,
            mo_ids_to_backorder=to_backorder,
            skip_consumption=True,
            skip_redirection=True,
        ).button_mark_done()
        production.mes_floor_state = "completed"
        # Finished when the shop floor finished it (Odoo writes the moment it posts).
        self._set_actual_dates(production, finish=utc_naive(event["occurred_at"]))
        production.mes_output_qty = 0.0
        message.move_ids |= (
            before | production.move_raw_ids | production.move_finished_ids
        ).filtered(lambda m: m.state == "done")
        return self.env._(
            "order %(ref)s done: %(qty)s %(uom)s",
            ref=production.name,
            qty=production.qty_produced,
            uom=production.product_uom_id.name,
        )

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
        if setup:
            logs |= self._time_log(
                workorder, self._setup_loss(), started, started + setup, description
            )
        if run or not setup:
            logs |= self._time_log(
                workorder, self._productive_loss(), started + setup, ended, description
            )
        uom = production.product_uom_id
        if data.get("good_quantity"):
            good = self._uom(message, data["uom"], production.product_id, "data.uom")
            workorder.qty_produced += good._compute_quantity(data["good_quantity"], uom)
        if data.get("reject_quantity"):
            unit = self._uom(message, data["uom"], production.product_id, "data.uom")
            workorder.mes_reject_qty += unit._compute_quantity(data["reject_quantity"], uom)
        message.productivity_ids |= logs
        if finish:
            workorder.with_context(mes_no_timer=True).button_finish()
        return self.env._(
            "operation %(op)s of %(ref)s: %(state)s, %(minutes).1f min logged",
            op=workorder.name,
            ref=production.name,
            state=workorder.state,
            minutes=sum(logs.mapped("duration")),
        )

    def _time_log(self, workorder, loss, start, end, description):
        return self.env["mrp.workcenter.productivity"].create(
            {
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
