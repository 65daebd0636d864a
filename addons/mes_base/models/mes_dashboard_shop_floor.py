from collections import defaultdict

import pytz

from odoo import fields, models
from odoo.tools import SQL

from odoo.addons.resource.models.utils import Intervals

from .mes_dashboard import _duration

# Availability at or above which a work center reads as good, and as fair.
GOOD, FAIR = 0.9, 0.75
MAX_WORKCENTERS = 30


def _aware(moment):
    return pytz.utc.localize(moment)


def _seconds(intervals):
    return sum((stop - start).total_seconds() for start, stop, _records in intervals)


class MesDashboard(models.AbstractModel):
    """The shop floor as the MES reports it: where time is lost (downtime by reason and by
    work center, largest first, with their cumulative share), how available each work
    center was over the period, and what was scrapped for which reason."""

    _inherit = "mes.dashboard"

    def _shopfloor_sections(self):
        steps = self._period()
        start, end = steps[0][0], min(steps[-1][1], self._now())
        availability = self._availability_map(steps, start, end)
        return [
            self._shopfloor_tiles(start, end, availability),
            self._downtime_pareto(
                "downtime_by_reason",
                self.env._("Downtime by reason"),
                "loss_id",
                start,
                end,
            ),
            self._downtime_pareto(
                "downtime_by_workcenter",
                self.env._("Downtime by work center"),
                "workcenter_id",
                start,
                end,
            ),
            availability,
            self._scrap_pareto(start, end),
        ]

    # Downtime

    def _downtime_domain(self, start, end, at=False):
        """MES downtime that overlaps [start, end), or (``at``) goes on at ``start``."""
        return [
            ("mes_downtime_ref", "!=", False),
            ("date_start", "<=" if at else "<", fields.Datetime.to_string(end)),
            "|",
            ("date_end", "=", False),
            ("date_end", ">", fields.Datetime.to_string(start)),
        ]

    def _downtime_rows(self, start, end, column=None):
        """MES downtime overlapping [start, end) as rows (key, start, end), its times cut to
        the window (going on: until now); ``key`` is ``column``'s value."""
        self.env["mrp.workcenter.productivity"].flush_model()
        self.env.cr.execute(
            SQL(
                """
            SELECT %s, GREATEST(date_start, %s), LEAST(COALESCE(date_end, %s), %s)
              FROM mrp_workcenter_productivity
             WHERE mes_downtime_ref IS NOT NULL
               AND date_start < %s AND (date_end IS NULL OR date_end > %s)
               AND company_id IN %s AND %s
            """,
                SQL.identifier(column) if column else SQL("NULL"),
                start,
                self._now(),
                end,
                end,
                start,
                tuple(self.env.companies.ids),
                self._backend_sql("mes_backend_id"),
            )
        )
        # A stop ending before it started (a hand edit: the MES's are refused) counts as a
        # stop of no time, as its list shows it.
        return [(key, begin, max(begin, stop)) for key, begin, stop in self.env.cr.fetchall()]

    def _downtime_pareto(self, key, title, column, start, end):
        totals = defaultdict(float)
        counts = defaultdict(int)
        for value, begin, stop in self._downtime_rows(start, end, column):
            totals[value] += (stop - begin).total_seconds()
            counts[value] += 1
        model = self.env["mrp.workcenter.productivity"]._fields[column].comodel_name
        records = self.env[model].browse(list(totals)).exists()
        rows = [
            {
                "key": record.id,
                "label": record.display_name,
                "value": totals[record.id],
                "display": _duration(totals[record.id]),
                "count": counts[record.id],
                "count_label": self._stops(counts[record.id]),
                "action": self._list(
                    f"{title}: {record.display_name}",
                    [*self._downtime_domain(start, end), (column, "=", record.id)],
                    model="mrp.workcenter.productivity",
                ),
            }
            for record in records
        ]
        return self._pareto(
            key,
            title,
            rows,
            self.env._("The MES reported no downtime in the period."),
        )

    def _stops(self, count):
        return self.env._("1 stop") if count == 1 else self.env._("%s stops", count)

    def _pareto(self, key, title, rows, empty, cumulative=True, total=None):
        """Rows largest first, each with its share of the whole (``total``, by default
        the rows' sum) and, where the rows do not overlap, the running share."""
        rows = sorted(rows, key=lambda row: (-row["value"], row["label"]))
        added = sum(row["value"] for row in rows)
        total = total or added or 1
        cumulative = cumulative and added <= total
        largest = rows[0]["value"] if rows else 1
        running = 0
        for row in rows:
            running += row["value"]
            row["width"] = round(100 * row["value"] / largest, 1)
            row["share"] = f"{100 * row['value'] / total:.0f}%"
            row["cumulative"] = f"{100 * running / total:.0f}%" if cumulative else ""
        return {
            "kind": "pareto",
            "key": key,
            "title": title,
            "rows": rows,
            "empty": empty,
        }

    # Availability

    def _live_workcenters(self, start, end):
        """Work centers the MES reported on in the period (events or downtime), worst first."""
        self.env["mes.message"].flush_model()
        self.env.cr.execute(
            SQL(
                """
            SELECT DISTINCT workcenter_id FROM mes_message
             WHERE workcenter_id IS NOT NULL AND create_date >= %s AND create_date < %s
               AND company_id IN %s AND %s
            """,
                start,
                end,
                tuple(self.env.companies.ids),
                self._backend_sql(),
            )
        )
        ids = {row[0] for row in self.env.cr.fetchall()}
        ids |= {key for key, _begin, _stop in self._downtime_rows(start, end, "workcenter_id")}
        # A work center shared by the plants has no company: the events already chose.
        return self.env["mrp.workcenter"].search([("id", "in", list(ids))], order="name, id")

    def _planned(self, workcenters, start, end):
        """The time each work center is planned to work in [start, end): its calendar's
        working time less its time off; round the clock without a calendar."""
        planned = {}
        window = Intervals([(_aware(start), _aware(end), self.env["resource.calendar"])])
        for calendar in workcenters.resource_calendar_id:
            members = workcenters.filtered(lambda wc, cal=calendar: wc.resource_calendar_id == cal)
            work = calendar._work_intervals_batch(
                _aware(start), _aware(end), resources=members.resource_id
            )
            for workcenter in members:
                planned[workcenter.id] = work[workcenter.resource_id.id] & window
        for workcenter in workcenters.filtered(lambda wc: not wc.resource_calendar_id):
            planned[workcenter.id] = window
        return planned

    def _availability_map(self, steps, start, end):
        workcenters = self._live_workcenters(start, end)
        empty = self.env["resource.calendar"]
        down = defaultdict(list)
        for workcenter_id, begin, stop in self._downtime_rows(start, end, "workcenter_id"):
            down[workcenter_id].append((_aware(begin), _aware(stop), empty))
        planned = self._planned(workcenters, start, end)
        rows = []
        for workcenter in workcenters:
            stopped = Intervals(down[workcenter.id])
            cells = []
            planned_total = down_total = 0.0
            for begin, stop, label in steps:
                if begin >= end:
                    cells.append({"display": "", "level": "", "note": "", "action": False})
                    continue
                step = Intervals([(_aware(begin), _aware(min(stop, end)), empty)])
                work = _seconds(planned[workcenter.id] & step)
                lost = _seconds(planned[workcenter.id] & step & stopped)
                planned_total += work
                down_total += lost
                cells.append(
                    self._availability_cell(workcenter, label, begin, min(stop, end), work, lost)
                )
            ratio = 1 - down_total / planned_total if planned_total else None
            rows.append(
                {
                    "label": workcenter.display_name,
                    "action": self._record(workcenter),
                    "ratio": ratio,
                    "planned": planned_total,
                    "down": down_total,
                    "total": f"{100 * ratio:.0f}%" if ratio is not None else "",
                    "level": self._availability_level(ratio),
                    "cells": cells,
                }
            )
        # The least available first.
        rows.sort(key=lambda row: (1 if row["ratio"] is None else row["ratio"], row["label"]))
        return {
            # Of every work center, those beyond the map's rows included.
            "planned": sum(row["planned"] for row in rows),
            "down": sum(row["down"] for row in rows),
            "kind": "heatmap",
            "key": "availability",
            "title": self.env._("Availability per work center"),
            "wide": True,
            "columns": [label for _begin, _stop, label in steps],
            "total_label": self.env._("Period"),
            "legend": self.env._(
                "Planned working time (the work center's calendar, less its time off) not "
                "lost to MES downtime. Good from %(good)s%%, fair from %(fair)s%%.",
                good=round(GOOD * 100),
                fair=round(FAIR * 100),
            ),
            "rows": rows[:MAX_WORKCENTERS],
            "empty": self.env._("The MES reported on no work center in the period."),
        }

    def _availability_level(self, ratio):
        if ratio is None:
            return ""
        return "success" if ratio >= GOOD else "warning" if ratio >= FAIR else "danger"

    def _availability_cell(self, workcenter, label, begin, stop, work, lost):
        if not work:
            return {
                "display": "",
                "level": "",
                "note": self.env._("%s: not planned to work", label),
                "action": False,
            }
        ratio = 1 - lost / work
        return {
            "display": f"{100 * ratio:.0f}%",
            "ratio": ratio,
            "level": self._availability_level(ratio),
            "note": self.env._(
                "%(label)s: %(lost)s down of %(work)s planned",
                label=label,
                lost=_duration(lost),
                work=_duration(work),
            ),
            "action": bool(lost)
            and self._list(
                f"{workcenter.display_name}, {label}",
                [*self._downtime_domain(begin, stop), ("workcenter_id", "=", workcenter.id)],
                model="mrp.workcenter.productivity",
            ),
        }

    # Scrap

    def _scrap_domain(self, start, end):
        return [
            ("state", "=", "done"),
            ("mes_message_ids", "!=", False),
            ("date_done", ">=", fields.Datetime.to_string(start)),
            ("date_done", "<", fields.Datetime.to_string(end)),
        ]

    def _scrap_pareto(self, start, end):
        """Scrap the MES reported, by reason; quantities are added up per unit only."""
        domain = self._scrap_domain(start, end)
        groups = self._group(
            domain,
            ["product_uom_id", "scrap_reason_tag_ids"],
            ["__count", "scrap_qty:sum"],
            model="stock.scrap",
        )
        by_unit = defaultdict(list)
        for uom, tag, count, quantity in groups:
            label = tag.display_name or self.env._("No reason given")
            by_unit[uom].append(
                {
                    "key": f"{uom.id}-{tag.id}",
                    "label": label,
                    "value": quantity,
                    "display": f"{quantity:g} {uom.name}",
                    "count": count,
                    "count_label": self.env._("1 scrap order")
                    if count == 1
                    else self.env._("%s scrap orders", count),
                    "action": self._list(
                        self.env._("Scrap: %s", label),
                        [
                            *domain,
                            ("product_uom_id", "=", uom.id),
                            ("scrap_reason_tag_ids", "=", tag.id)
                            if tag
                            else ("scrap_reason_tag_ids", "=", False),
                        ],
                        model="stock.scrap",
                    ),
                }
            )
        # A scrap order with several reasons is under each: shares are of what was
        # scrapped, and do not run on where rows overlap.
        totals = dict(
            self._group(domain, ["product_uom_id"], ["scrap_qty:sum"], model="stock.scrap")
        )
        title = self.env._("Scrap by reason")
        empty = self.env._("The MES reported no scrap in the period.")
        rows = []
        for uom in sorted(by_unit, key=lambda unit: unit.name):
            rows += self._pareto(
                "scrap_by_reason", title, by_unit[uom], empty, len(by_unit) == 1, totals[uom]
            )["rows"]
        return {**self._pareto("scrap_by_reason", title, [], empty), "rows": rows}

    # Summary

    def _shopfloor_tiles(self, start, end, availability):
        downtime = self._downtime_rows(start, end)
        lost = sum((stop - begin).total_seconds() for _key, begin, stop in downtime)
        planned, lost_planned = availability["planned"], availability["down"]
        ratio = 1 - lost_planned / planned if planned else None
        downtime_list = self._list(
            self.env._("MES downtime, %s", self._period_label().lower()),
            self._downtime_domain(start, end),
            model="mrp.workcenter.productivity",
        )
        tiles = [
            self._tile(
                "down_now",
                self.env._("Work centers down now"),
                [
                    (
                        "time_ids",
                        "any",
                        [
                            *self._scope("mrp.workcenter.productivity"),
                            *self._downtime_domain(self._now(), self._now(), at=True),
                        ],
                    )
                ],
                model="mrp.workcenter",
                note=self.env._("in a downtime the MES reported"),
            ),
            {
                "key": "downtime",
                "label": self.env._("Downtime"),
                "value": _duration(lost) if downtime else "0",
                "note": self._stops(len(downtime)),
                "level": "warning" if downtime else "success",
                "action": downtime_list if downtime else False,
            },
            {
                "key": "availability",
                "label": self.env._("Availability"),
                "value": f"{100 * ratio:.0f}%" if ratio is not None else "-",
                "note": self.env._(
                    "%(lost)s lost of %(planned)s planned",
                    lost=_duration(lost_planned),
                    planned=_duration(planned),
                )
                if planned
                else self.env._("no planned time"),
                "level": self._availability_level(ratio) or "info",
                "action": downtime_list if downtime else False,
            },
            self._tile(
                "scrap",
                self.env._("Scrap orders from the MES"),
                self._scrap_domain(start, end),
                level="warning",
                model="stock.scrap",
                idle="success",
            ),
            self._tile(
                "rework",
                self.env._("In rework now"),
                [("state", "=", "rework")],
                level="warning",
                model="mes.rework",
                note=self.env._("units and quantities the MES sent to rework"),
            ),
        ]
        return {
            "kind": "tiles",
            "key": "summary",
            "title": self._period_label(),
            "tiles": tiles,
        }
