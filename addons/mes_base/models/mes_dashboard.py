from datetime import datetime, time, timedelta

import pytz

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL, format_date, format_datetime

from .mes_message import ERROR_STATES, OPEN_STATES

BUSY_STATES = ("received", "pending")
UNPOSTED_TYPES = ("material_consumed", "output_produced", "scrap_reported", "order_completed")
# Age of open messages, in hours: [lower, upper)
AGE_BUCKETS = ((0, 1), (1, 4), (4, 24), (24, None))
UNKNOWN_LOT = [("cause_code", "=", "unknown_lot")]

DASHBOARDS = {
    "planner": "mes_base.group_mes_user",
    "warehouse": "mes_base.group_mes_user",
    "shopfloor": "mes_base.group_mes_user",
    "health": "mes_base.group_mes_manager",
}
# The periods a reader may look back over, and the bars' step in each.
PERIODS = {"1d": (1, "hour"), "7d": (7, "day"), "30d": (30, "day")}
FILTERS = ("period", "company_ids", "backend_ids")
# Dashboards with figures over a period (the others count what is open now).
PERIODIC = ("planner", "shopfloor", "health")


def _duration(seconds):
    """A short, human age: 45 s, 12 min, 3 h 05 min, 2 d 4 h."""
    seconds = int(max(seconds or 0, 0))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


class MesDashboard(models.AbstractModel):
    """The figures of the MES dashboards, each with the filtered list behind it.

    ``get_dashboard(name)`` answers one dashboard as sections of tiles, tables and
    bars; every figure carries the window action that lists exactly what it counts.
    Everything is counted in SQL (grouped reads and indexed queries), never by
    loading messages, and within the user's companies and access rights.
    """

    _name = "mes.dashboard"
    _description = "MES dashboards"

    @api.model
    def get_dashboard(self, name, filters=None):
        """One dashboard, for ``filters``: ``period`` (``1d``, ``7d`` or ``30d``, what the
        bars and pictures look back over), ``company_ids`` (plants, among the user's active
        companies) and ``backend_ids`` (MES). Open counts are of now, whatever the period."""
        group = DASHBOARDS.get(name) if isinstance(name, str) else None
        if not group:
            raise AccessError(self.env._("There is no MES dashboard %r.", name))
        if not self.env.user.has_group(group):
            raise AccessError(
                self.env._("The %(name)s dashboard is for %(group)s.", name=name, group=group)
            )
        now = fields.Datetime.now()
        chosen = self._read_filters(filters)
        builder = self.with_context(
            mes_dashboard_now=now,
            mes_dashboard_filters=chosen,
            # A plant chosen: what is counted in SQL follows it too.
            allowed_company_ids=list(chosen["company_ids"] or self.env.companies.ids),
        )
        return {
            "name": name,
            "title": {
                "planner": self.env._("MES exceptions"),
                "warehouse": self.env._("MES stock exceptions"),
                "shopfloor": self.env._("Shop floor as the MES reports it"),
                "health": self.env._("MES integration health"),
            }[name],
            # As the reader reads time (the bars are in the same zone).
            "generated_at": format_datetime(self.env, now, dt_format="medium"),
            "timezone": self._tz().zone,
            "filters": dict(self._filter_choices(chosen), periodic=name in PERIODIC),
            "sections": getattr(builder, f"_{name}_sections")(),
        }

    # Filters

    def _read_filters(self, filters):
        """The reader's filters, checked: a clear error names the filter and the value."""
        if filters is None:
            filters = {}
        if not isinstance(filters, dict):
            raise UserError(self.env._("filters: expected an object, got %r.", filters))
        unknown = sorted(set(filters) - set(FILTERS), key=str)
        if unknown:
            raise UserError(
                self.env._(
                    "filters.%(name)s: there is no such filter (filters are %(known)s).",
                    name=unknown[0],
                    known=", ".join(FILTERS),
                )
            )
        period = filters.get("period") or "1d"
        if not isinstance(period, str) or period not in PERIODS:
            raise UserError(
                self.env._(
                    "filters.period: %(value)r is not a period (%(known)s).",
                    value=period,
                    known=", ".join(PERIODS),
                )
            )
        company_ids = self._filter_ids(filters, "company_ids", "res.company")
        backend_ids = self._filter_ids(filters, "backend_ids", "mes.backend", self.env._("MES"))
        return {"period": period, "company_ids": company_ids, "backend_ids": backend_ids}

    def _filter_ids(self, filters, name, model, what=None):
        """The ids of filter ``name``: records of ``model`` the reader may choose (his
        active companies; the MES he can read)."""
        ids = filters.get(name) or []
        if not isinstance(ids, list | tuple) or len(ids) > 1000:
            raise UserError(self.env._("filters.%(name)s: expected a list of ids.", name=name))
        numbers = [value for value in ids if isinstance(value, int) and not isinstance(value, bool)]
        if model == "res.company":
            allowed = set(self.env.companies.ids)
        else:
            allowed = set(self.env[model].search([("id", "in", numbers)]).ids)
        for value in ids:
            if not (isinstance(value, int) and not isinstance(value, bool)) or value not in allowed:
                raise UserError(
                    self.env._(
                        "filters.%(name)s: %(value)r is not one of your %(what)s.",
                        name=name,
                        value=value,
                        what=what or self.env[model]._description,
                    )
                )
        return tuple(sorted(set(ids)))

    def _filter_choices(self, chosen):
        labels = self._period_labels()
        return {
            **{
                key: list(value) if isinstance(value, tuple) else value
                for key, value in chosen.items()
            },
            "periods": [{"key": key, "label": labels[key]} for key in PERIODS],
            # Offered only where there is a choice.
            "companies": [
                {"id": company.id, "name": company.name} for company in self.env.companies
            ]
            if len(self.env.companies) > 1
            else [],
            "backends": [
                {"id": backend.id, "name": backend.display_name}
                for backend in self.env["mes.backend"].search([], limit=100)
            ],
        }

    def _filters(self):
        return self.env.context.get("mes_dashboard_filters") or {
            "period": "1d",
            "company_ids": (),
            "backend_ids": (),
        }

    def _scope_fields(self):
        """Per model the fields that name its plant and its MES, to apply the filters."""
        return {
            "mes.message": ("company_id", "backend_id"),
            "mes.backend": ("company_id", "id"),
            "queue.job": ("company_id", None),
            "stock.quant": ("company_id", None),
            "stock.scrap": ("company_id", "mes_message_ids.backend_id"),
            "mes.rework": ("company_id", "backend_id"),
            "mrp.workcenter": ("company_id", None),
            "mrp.workcenter.productivity": ("company_id", "mes_backend_id"),
        }

    def _scope(self, model):
        """The filters as a domain on ``model``."""
        filters = self._filters()
        company_field, backend_field = self._scope_fields().get(model, (None, None))
        domain = []
        if filters["company_ids"] and company_field:
            companies = list(filters["company_ids"])
            if not self.env[model]._fields[company_field].required:
                companies.append(False)  # shared by the plants (a work center, say)
            domain.append((company_field, "in", companies))
        if filters["backend_ids"] and backend_field:
            domain.append((backend_field, "in", list(filters["backend_ids"])))
        return domain

    def _group(self, domain, groupby, aggregates, model="mes.message", **kwargs):
        return self.env[model]._read_group(
            [*self._scope(model), *domain], groupby, aggregates, **kwargs
        )

    def _search(self, domain, model="mes.message", **kwargs):
        return self.env[model].search([*self._scope(model), *domain], **kwargs)

    def _backend_sql(self, column="backend_id"):
        """The MES filter for a query on mes_message."""
        backend_ids = self._filters()["backend_ids"]
        if not backend_ids:
            return SQL("TRUE")
        return SQL("%s IN %s", SQL.identifier(column), tuple(backend_ids))

    def _tz(self):
        for name in (self.env.context.get("tz"), self.env.user.tz):
            if name in pytz.all_timezones_set:
                return pytz.timezone(name)
        return pytz.utc

    def _period(self):
        """The period's steps, oldest first: [(start, end, label)] in UTC, labelled and cut
        as the reader lives them (hours, or days from the reader's midnight)."""
        days, step = PERIODS[self._filters()["period"]]
        now = self._now()
        tz = self._tz()
        if step == "hour":
            first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
            bounds = [first + timedelta(hours=index) for index in range(25)]
            labels = [pytz.utc.localize(bound).astimezone(tz).strftime("%H:%M") for bound in bounds]
        else:
            today = pytz.utc.localize(now).astimezone(tz).date()
            dates = [today - timedelta(days=days - 1 - index) for index in range(days + 1)]
            bounds = [
                tz.localize(datetime.combine(day, time.min))
                .astimezone(pytz.utc)
                .replace(tzinfo=None)
                for day in dates
            ]
            labels = [format_date(self.env, day, date_format="EEE d") for day in dates]
        return [
            (bounds[index], bounds[index + 1], labels[index]) for index in range(len(bounds) - 1)
        ]

    # Building blocks

    def _now(self):
        return self.env.context.get("mes_dashboard_now") or fields.Datetime.now()

    def _ago(self, hours):
        return fields.Datetime.to_string(self._now() - timedelta(hours=hours))

    def _list(self, title, domain, model="mes.message", context=None):
        """The window action listing what a figure counts."""
        return {
            "type": "ir.actions.act_window",
            "name": title,
            "res_model": model,
            "views": [[False, "list"], [False, "form"]],
            "domain": [*self._scope(model), *domain],
            "context": context or {},
            "target": "current",
        }

    def _record(self, record):
        return {
            "type": "ir.actions.act_window",
            "name": record.display_name,
            "res_model": record._name,
            "res_id": record.id,
            "views": [[False, "form"]],
            "target": "current",
        }

    def _count(self, domain, model="mes.message"):
        return self.env[model].search_count([*self._scope(model), *domain])

    def _tile(
        self, key, label, domain, level="danger", note=None, model="mes.message", idle="success"
    ):
        """A count and its list; ``idle`` is the tile's level when there is nothing to count."""
        count = self._count(domain, model)
        return {
            "key": key,
            "label": label,
            "value": count,
            "note": note or "",
            "level": level if count else idle,
            "action": self._list(label, domain, model),
        }

    def _age_domain(self, lower, upper):
        domain = [("create_date", "<=", self._ago(lower))] if lower else []
        if upper:
            domain.append(("create_date", ">", self._ago(upper)))
        return domain

    def _age_label(self, lower, upper):
        if upper is None:
            return self.env._("over %s h", lower)
        return self.env._("%(lower)s-%(upper)s h", lower=lower, upper=upper)

    def _group_label(self, value, empty=None):
        if isinstance(value, models.BaseModel):
            return value.display_name if value else (empty or self.env._("None"))
        return value or (empty or self.env._("None"))

    def _open_matrix(self, title, field, key, empty=None):
        """Open messages per value of ``field``: to fix, waiting, in progress, in all."""
        columns = [
            (self.env._("To fix"), ERROR_STATES),
            (self.env._("Waiting"), ("waiting",)),
            (self.env._("In progress"), BUSY_STATES),
            (self.env._("Open"), OPEN_STATES),
        ]
        counts = {}
        groups = self._group([("state", "in", OPEN_STATES)], [field, "state"], ["__count"])
        for value, state, count in groups:
            counts.setdefault(value, {})[state] = count
        field_def = self.env["mes.message"]._fields[field]
        labels = (
            dict(field_def._description_selection(self.env))
            if field_def.type == "selection"
            else {}
        )
        rows = []
        for value, by_state in sorted(counts.items(), key=lambda item: -sum(item[1].values())):
            filter_value = value.id if isinstance(value, models.BaseModel) else value
            label = labels.get(value) or self._group_label(value, empty)
            cells = []
            for column, states in columns:
                domain = [(field, "=", filter_value or False), ("state", "in", states)]
                count = sum(by_state.get(state, 0) for state in states)
                cells.append(
                    {
                        "value": count,
                        "action": self._list(f"{label}: {column}", domain) if count else False,
                    }
                )
            rows.append({"label": label, "cells": cells})
        return {
            "kind": "table",
            "key": key,
            "title": title,
            "columns": [column for column, _states in columns],
            "rows": rows,
            "empty": self.env._("Nothing open."),
        }

    # Planner

    def _planner_sections(self):
        oldest = self._search([("state", "=", "error")], order="create_date, id", limit=1)
        waiting_longest = self._search(
            [("state", "=", "waiting")], order="waiting_since, id", limit=1
        )
        now = self._now()
        tiles = [
            self._tile("errors", self.env._("Errors to fix"), [("state", "=", "error")]),
            self._tile(
                "waiting",
                self.env._("Waiting"),
                [("state", "=", "waiting")],
                level="warning",
                note=waiting_longest
                and self.env._(
                    "longest for %s",
                    _duration(
                        (
                            now - (waiting_longest.waiting_since or waiting_longest.create_date)
                        ).total_seconds()
                    ),
                ),
            ),
            self._tile(
                "exports_failed",
                self.env._("Exports failed or rejected"),
                [("direction", "=", "outbound"), ("state", "in", ("failed", "rejected"))],
            ),
            self._tile(
                "exports_pending",
                self.env._("Exports not yet taken"),
                [("direction", "=", "outbound"), ("state", "=", "pending")],
                level="warning",
            ),
            self._tile(
                "received",
                self.env._("Received, not yet posted"),
                [("direction", "=", "inbound"), ("state", "=", "received")],
                level="info",
            ),
            {
                "key": "oldest_error",
                "label": self.env._("Oldest open error"),
                "value": _duration((now - oldest.create_date).total_seconds()) if oldest else "-",
                "note": f"{oldest.display_name}: "
                f"{oldest._cause_sentence(oldest.cause_code, oldest.cause_value)}"
                if oldest
                else "",
                "level": "danger" if oldest else "success",
                "action": self._record(oldest) if oldest else False,
            },
        ]
        return [
            {"kind": "tiles", "key": "summary", "title": self.env._("Now"), "tiles": tiles},
            self._causes_table(),
            self._age_table(),
            self._open_matrix(self.env._("Open by type"), "message_type", "by_type"),
            self._open_matrix(
                self.env._("Open by work center"),
                "workcenter_id",
                "by_workcenter",
                empty=self.env._("No work center named"),
            ),
            self._open_matrix(self.env._("Open by MES"), "backend_id", "by_backend"),
        ]

    def _causes_table(self):
        """What stops reports (errors, and waits for something Odoo lacks), grouped by
        cause: one fix (a mapping, a lot) and one bulk retry per row."""
        stopped = (*ERROR_STATES, "waiting")
        groups = self._group(
            [("state", "in", stopped)],
            ["error_cause", "backend_id"],
            ["__count", "create_date:min"],
            order="__count desc, create_date:min",
            limit=50,
        )
        now = self._now()
        rows = []
        for cause, backend, count, oldest in groups:
            domain = [
                ("state", "in", stopped),
                ("error_cause", "=", cause or False),
                ("backend_id", "=", backend.id),
            ]
            # One of its messages says what the cause is, in words, and what fixes it.
            example = self._search(domain, order="id", limit=1)
            label = example._cause_sentence(example.cause_code, example.cause_value)
            fix_label, fix_action = example._fix_action()
            rows.append(
                {
                    "label": label,
                    "action": self._list(label, domain),
                    "cells": [
                        {"value": backend.display_name},
                        {"value": count, "action": self._list(label, domain)},
                        {"value": _duration((now - oldest).total_seconds())},
                        {"value": fix_label, "action": fix_action},
                    ],
                }
            )
        return {
            "kind": "table",
            "key": "causes",
            "title": self.env._("Stopped reports by cause"),
            "wide": True,
            "columns": [
                self.env._("MES"),
                self.env._("Messages"),
                self.env._("Oldest"),
                self.env._("Fix"),
            ],
            "rows": rows,
            "empty": self.env._("No report is stopped."),
        }

    def _age_table(self):
        states = dict(self.env["mes.message"]._fields["state"]._description_selection(self.env))
        counts = {}
        for lower, upper in AGE_BUCKETS:
            domain = [("state", "in", OPEN_STATES), *self._age_domain(lower, upper)]
            for state, count in self._group(domain, ["state"], ["__count"]):
                counts[state, lower] = count
        rows = []
        for state in OPEN_STATES:
            cells = []
            for lower, upper in AGE_BUCKETS:
                count = counts.get((state, lower), 0)
                domain = [("state", "=", state), *self._age_domain(lower, upper)]
                title = f"{states[state]}, {self._age_label(lower, upper)}"
                cells.append({"value": count, "action": count and self._list(title, domain)})
            total = sum(cell["value"] for cell in cells)
            if not total:
                continue  # a row of zeros says nothing
            cells.append(
                {
                    "value": total,
                    "action": total and self._list(states[state], [("state", "=", state)]),
                }
            )
            rows.append({"label": states[state], "cells": cells})
        return {
            "kind": "table",
            "key": "by_age",
            "title": self.env._("Open by state and age"),
            "columns": [self._age_label(lower, upper) for lower, upper in AGE_BUCKETS]
            + [self.env._("All")],
            "rows": rows,
            "empty": self.env._("Nothing open."),
        }

    # Warehouse

    def _warehouse_sections(self):
        unposted = [
            ("direction", "=", "inbound"),
            ("state", "in", ("received", "waiting", "error")),
        ]
        negative = self._negative_quants()
        tiles = [
            self._tile(
                "consumption",
                self.env._("Consumption not posted"),
                [*unposted, ("message_type", "=", "material_consumed")],
            ),
            self._tile(
                "output",
                self.env._("Output not posted"),
                [*unposted, ("message_type", "in", ("output_produced", "order_completed"))],
            ),
            self._tile(
                "scrap",
                self.env._("Scrap not posted"),
                [*unposted, ("message_type", "=", "scrap_reported")],
            ),
            self._tile(
                "unknown_lots", self.env._("Waiting for unknown lots"), [*unposted, *UNKNOWN_LOT]
            ),
            {
                "key": "negative_stock",
                "label": self.env._("Negative stock from MES postings"),
                "value": len(negative),
                "note": "",
                "level": "danger" if negative else "success",
                "action": self._list(
                    self.env._("Negative stock from MES postings"),
                    [("id", "in", negative.ids)],
                    model="stock.quant",
                ),
            },
        ]
        return [
            {"kind": "tiles", "key": "summary", "title": self.env._("Not posted"), "tiles": tiles},
            self._unposted_material_table(unposted),
            self._unknown_lots_table(unposted),
            self._negative_table(negative),
        ]

    def _unposted_material_table(self, unposted):
        types = dict(
            self.env["mes.message"]._fields["message_type"]._description_selection(self.env)
        )
        groups = self._group(
            [*unposted, ("message_type", "in", UNPOSTED_TYPES)],
            ["message_type", "product_id", "reported_product", "reported_uom"],
            ["__count", "reported_quantity:sum"],
            order="__count desc",
            limit=50,
        )
        rows = []
        for message_type, product, code, uom, count, quantity in groups:
            domain = [
                *unposted,
                ("message_type", "=", message_type),
                ("product_id", "=", product.id or False),
                ("reported_product", "=", code or False),
                ("reported_uom", "=", uom or False),
            ]
            label = product.display_name or code or self.env._("Order output")
            rows.append(
                {
                    "label": label,
                    "cells": [
                        {"value": types[message_type]},
                        {
                            "value": self.env._("unmapped MES code %s", code)
                            if code and not product
                            else ""
                        },
                        # A completion without quantity confirms what output events reported.
                        {"value": f"{quantity:g} {uom}" if uom else "-"},
                        {"value": count, "action": self._list(label, domain)},
                    ],
                }
            )
        return {
            "kind": "table",
            "key": "unposted_material",
            "title": self.env._("Material reported by the MES, not posted"),
            "columns": [
                self.env._("Type"),
                self.env._("Mapping"),
                self.env._("Quantity"),
                self.env._("Messages"),
            ],
            "rows": rows,
            "empty": self.env._("Everything reported is posted."),
        }

    def _unknown_lots_table(self, unposted):
        groups = self._group(
            [*unposted, *UNKNOWN_LOT],
            ["reported_lot", "product_id"],
            ["__count", "create_date:min"],
            order="create_date:min",
            limit=50,
        )
        now = self._now()
        rows = [
            {
                "label": lot or "?",
                "cells": [
                    {"value": product.display_name},
                    {"value": _duration((now - oldest).total_seconds())},
                    {
                        "value": count,
                        "action": self._list(
                            self.env._("Waiting for lot %s", lot),
                            [
                                *unposted,
                                *UNKNOWN_LOT,
                                ("reported_lot", "=", lot),
                                ("product_id", "=", product.id or False),
                            ],
                        ),
                    },
                ],
            }
            for lot, product, count, oldest in groups
        ]
        return {
            "kind": "table",
            "key": "unknown_lots",
            "title": self.env._("Lots the MES used that Odoo does not know"),
            "columns": [self.env._("Product"), self.env._("Waiting for"), self.env._("Messages")],
            "rows": rows,
            "empty": self.env._("No unknown lots."),
        }

    def _negative_quants(self):
        """Internal stock below zero where MES reports were posted (product, place, lot)."""
        self.env["stock.quant"].flush_model()
        self.env["stock.move.line"].flush_model()
        self.env.cr.execute(
            """
            SELECT q.id
              FROM stock_quant q
              JOIN stock_location l ON l.id = q.location_id
             WHERE q.quantity < 0
               AND l.usage = 'internal'
               AND q.company_id IN %s
               AND EXISTS (
                    SELECT 1 FROM stock_move_line ml
                     WHERE ml.mes_message_id IS NOT NULL
                       AND ml.state = 'done'
                       AND ml.product_id = q.product_id
                       AND ml.location_id = q.location_id
                       AND ml.lot_id IS NOT DISTINCT FROM q.lot_id)
             ORDER BY q.quantity
            """,
            (tuple(self.env.companies.ids),),
        )
        ids = [row[0] for row in self.env.cr.fetchall()]
        return self.env["stock.quant"].browse(ids)._filtered_access("read")

    def _negative_table(self, quants):
        rows = [
            {
                "label": quant.product_id.display_name,
                "action": self._record(quant.product_id),
                "cells": [
                    {"value": quant.location_id.display_name},
                    {"value": quant.lot_id.name or ""},
                    {
                        "value": f"{quant.quantity:g} {quant.product_uom_id.name}",
                        "action": self._list(
                            quant.product_id.display_name,
                            [("id", "=", quant.id)],
                            model="stock.quant",
                        ),
                    },
                ],
            }
            for quant in quants[:50]
        ]
        return {
            "kind": "table",
            "key": "negative_stock",
            "title": self.env._("Negative stock created by MES postings"),
            "columns": [self.env._("Location"), self.env._("Lot"), self.env._("On hand")],
            "rows": rows,
            "empty": self.env._("No negative stock."),
        }

    # Integration health

    def _health_sections(self):
        since_hour = self._ago(1)
        since = fields.Datetime.to_string(self._period()[0][0])
        median, p95, posted = self._time_to_post(since)
        period = self._period_label().lower()
        failed_jobs = [("model_name", "=", "mes.message"), ("state", "=", "failed")]
        tiles = [
            self._tile(
                "backlog",
                self.env._("Backlog"),
                [("state", "in", ("received", "waiting", "pending"))],
                level="warning",
                note=self.env._("received or waiting, and exports not yet taken"),
            ),
            self._tile(
                "in_last_hour",
                self.env._("MES → Odoo, last hour"),
                [("direction", "=", "inbound"), ("create_date", ">", since_hour)],
                level="info",
                idle="info",
            ),
            self._tile(
                "out_last_hour",
                self.env._("Odoo → MES, last hour"),
                [("direction", "=", "outbound"), ("create_date", ">", since_hour)],
                level="info",
                idle="info",
            ),
            {
                "key": "time_to_post",
                "label": self.env._("Received to posted (median, %s)", period),
                "value": _duration(median) if posted else "-",
                "note": (
                    self.env._("95%% within %(p95)s, %(n)s posted", p95=_duration(p95), n=posted)
                    if posted
                    else self.env._("nothing posted in the %s", period)
                ),
                "level": "info",
                "action": self._list(
                    self.env._("Posted, %s", period),
                    [
                        ("direction", "=", "inbound"),
                        ("state", "=", "processed"),
                        ("processed_at", ">=", since),
                    ],
                ),
            },
            self._tile(
                "failed_jobs",
                self.env._("Failed queue jobs"),
                failed_jobs,
                note=self.env._("jobs of MES messages that queue_job gave up on"),
                model="queue.job",
            ),
        ]
        return [
            {"kind": "tiles", "key": "summary", "title": self.env._("Traffic"), "tiles": tiles},
            self._backends_table(),
            self._traffic_bars(),
        ]

    def _time_to_post(self, since):
        self.env["mes.message"].flush_model()
        self.env.cr.execute(
            SQL(
                """
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s),
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY s),
                   count(*)
              FROM (SELECT EXTRACT(EPOCH FROM processed_at - create_date) AS s
                      FROM mes_message
                     WHERE processed_at >= %s
                       AND direction = 'inbound'
                       AND state = 'processed'
                       AND company_id IN %s
                       AND %s) AS posted
            """,
                since,
                tuple(self.env.companies.ids),
                self._backend_sql(),
            )
        )
        median, p95, count = self.env.cr.fetchone()
        return median or 0, p95 or 0, count

    def _last(self, backend, direction, states=None):
        """When the last message of one direction reached / left Odoo (indexed, newest first)."""
        domain = [("backend_id", "=", backend.id), ("direction", "=", direction)]
        if states:
            domain.append(("state", "in", states))
        last = self._search(domain, order="create_date desc, id desc", limit=1)
        return last.create_date

    def _backends_table(self):
        now = self._now()

        def age(when):
            return (
                self.env._("%s ago", _duration((now - when).total_seconds()))
                if when
                else self.env._("never")
            )

        open_counts = dict(
            self._group(
                [("state", "in", ("received", "waiting", "pending"))], ["backend_id"], ["__count"]
            )
        )
        error_counts = dict(
            self._group([("state", "in", ERROR_STATES)], ["backend_id"], ["__count"])
        )
        rows = []
        for backend in self._search([], "mes.backend", limit=50):
            backlog = [
                ("backend_id", "=", backend.id),
                ("state", "in", ("received", "waiting", "pending")),
            ]
            errors = [("backend_id", "=", backend.id), ("state", "in", ERROR_STATES)]
            pulled = backend.pull_last_success_at
            rows.append(
                {
                    "label": backend.display_name,
                    "action": self._record(backend),
                    "cells": [
                        {"value": age(self._last(backend, "inbound"))},
                        {"value": age(self._last(backend, "outbound", ("acknowledged", "sent")))},
                        {
                            "value": (age(pulled) if pulled else self.env._("never"))
                            if backend.pull_enabled
                            else self.env._("push"),
                            "level": "danger"
                            if backend.pull_enabled and backend.pull_last_error
                            else "",
                            "note": backend.pull_last_error or "",
                        },
                        {
                            "value": open_counts.get(backend, 0),
                            "action": self._list(self.env._("%s: backlog", backend.name), backlog),
                        },
                        {
                            "value": error_counts.get(backend, 0),
                            "action": self._list(self.env._("%s: errors", backend.name), errors),
                        },
                    ],
                }
            )
        return {
            "kind": "table",
            "key": "backends",
            "title": self.env._("Contact with each MES"),
            "columns": [
                self.env._("Last event received"),
                self.env._("Last order taken by the MES"),
                self.env._("Last feed read"),
                self.env._("Backlog"),
                self.env._("Errors"),
            ],
            "rows": rows,
            "empty": self.env._("No MES backend configured."),
        }

    def _traffic_bars(self):
        """Messages per hour or day of the period, both ways, and those of them in error
        now (steps in the reader's zone)."""
        steps = self._period()
        self.env["mes.message"].flush_model()
        self.env.cr.execute(
            SQL(
                """
            SELECT width_bucket(create_date, %s::timestamp[]) AS step, direction,
                   count(*), count(*) FILTER (WHERE state IN %s)
              FROM mes_message
             WHERE create_date >= %s AND create_date < %s AND company_id IN %s AND %s
             GROUP BY 1, 2
            """,
                [start for start, _end, _label in steps] + [steps[-1][1]],
                ERROR_STATES,
                steps[0][0],
                steps[-1][1],
                tuple(self.env.companies.ids),
                self._backend_sql(),
            )
        )
        counts = {}
        for step, direction, count, errors in self.env.cr.fetchall():
            counts[step - 1, direction] = count
            counts[step - 1, "error"] = counts.get((step - 1, "error"), 0) + errors
        series = [
            (self.env._("MES → Odoo"), [("direction", "=", "inbound")], "inbound"),
            (self.env._("Odoo → MES"), [("direction", "=", "outbound")], "outbound"),
            (self.env._("Of these, in error now"), [("state", "in", ERROR_STATES)], "error"),
        ]
        points = []
        for index, (start, end, label) in enumerate(steps):
            when = [
                ("create_date", ">=", fields.Datetime.to_string(start)),
                ("create_date", "<", fields.Datetime.to_string(end)),
            ]
            bars = []
            for name, domain, key in series:
                value = counts.get((index, key), 0)
                bars.append(
                    {
                        "value": value,
                        "action": value and self._list(f"{name}, {label}", [*domain, *when]),
                    }
                )
            points.append({"label": label, "bars": bars})
        return {
            "kind": "bars",
            "key": "traffic",
            "title": self.env._("Messages, %s", self._period_label().lower()),
            "wide": True,
            "series": [name for name, _domain, _key in series],
            "levels": ["info", "success", "danger"],
            "points": points,
        }

    def _period_labels(self):
        return {
            "1d": self.env._("Last 24 hours"),
            "7d": self.env._("Last 7 days"),
            "30d": self.env._("Last 30 days"),
        }

    def _period_label(self):
        return self._period_labels()[self._filters()["period"]]
