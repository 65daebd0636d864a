"""What the simulated shop floor does with an order, and the totals it reports.

Pure functions: the server turns their output into stored, numbered events.
"""

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

DEFAULT_SCRAP_REASONS = ("DAMAGED", "DIMENSION")
DEFAULT_DOWNTIME_REASONS = ("BREAKDOWN", "MATERIAL")
DEFAULT_QUALITY_CHECKS = ("FINAL",)
BREAKDOWN_MINUTES = 30


def _round(value, digits=3):
    return round(value + 0.0, digits)


def run_order(
    order,
    lots=None,
    scrap_reasons=DEFAULT_SCRAP_REASONS,
    downtime_reasons=DEFAULT_DOWNTIME_REASONS,
    seed=None,
    now=None,
    quality_checks=DEFAULT_QUALITY_CHECKS,
    breakdown=None,
    quality_fail=None,
    partial=False,
    rework=None,
    used_serials=None,
    operators=(),
):
    """The events of one order run from start to finish, as ``(event_type, data)`` pairs.

    ``order`` is the order document Odoo sent (schema ``mes.order/1``); ``lots``
    maps a product code to the lot numbers the shop floor has of it, used in turn.
    The run is reproducible for a given seed (default: the order id). ``breakdown``
    (a stop of the first resource for the first downtime reason, 30 minutes) and
    ``quality_fail`` (the quality checks of the output fail) force those incidents
    when true, leave them out when false, and leave them to chance when None.

    A product tracked by serial is made unit by unit: each unit is reported with its
    serial and what went into it. ``partial``: the order is run in two shifts, the
    first confirmed as a part. ``rework`` ("good" or "scrapped"): one unit (or one of the
    lot) is sent to rework, with that outcome. ``used_serials``: the serials of
    components the shop floor already used (a set, added to). ``operators``: badges
    of the operators the shop floor has; each operation names who worked on it and
    their minutes (one on the machine's whole time, a second one on every other
    operation for half of it).
    """
    lots = lots or {}
    rng = random.Random(seed if seed is not None else order["order_id"])
    now = now or datetime.now(UTC).replace(microsecond=0)
    quantity = order["quantity"]
    events = [("order_started", {"operator": "SIM"})]
    operations = sorted(order.get("operations") or [], key=lambda o: o["sequence"])
    clock = now - timedelta(minutes=sum(o.get("duration_minutes") or 0 for o in operations) + 60)

    if operations and (breakdown or (breakdown is None and rng.random() < 0.3)):
        resource = operations[0]["resource"]
        start = clock + timedelta(minutes=rng.randint(1, 10))
        end = start + timedelta(minutes=rng.randint(5, 40))
        downtime_id = f"DT-{rng.randint(100000, 999999)}"
        reason = rng.choice(list(downtime_reasons))
        if breakdown:
            end = start + timedelta(minutes=BREAKDOWN_MINUTES)
            reason = downtime_reasons[0]
        events.append(
            (
                "downtime_started",
                {
                    "downtime_id": downtime_id,
                    "resource": resource,
                    "reason": reason,
                    "started_at": start.isoformat(),
                },
            )
        )
        events.append(
            (
                "downtime_ended",
                {"downtime_id": downtime_id, "resource": resource, "ended_at": end.isoformat()},
            )
        )

    for index, operation in enumerate(operations):
        minutes = operation.get("duration_minutes") or 0
        setup = _round(min(5.0, minutes / 4))
        run = _round(minutes - setup)
        clock += timedelta(minutes=setup + run)
        report = {
            "operation": operation["sequence"],
            "resource": operation["resource"],
            "good_quantity": quantity,
            "uom": order["uom"],
            "setup_minutes": setup,
            "run_minutes": run,
            "ended_at": clock.isoformat(),
        }
        if operators:
            crew = [{"operator": operators[index % len(operators)], "minutes": _round(setup + run)}]
            if len(operators) > 1 and index % 2:
                helper = operators[(index + 1) % len(operators)]
                crew.append({"operator": helper, "minutes": _round((setup + run) / 2)})
            report["operators"] = crew
        events.append(("operation_completed", report))

    product = order["product"]
    serial = product.get("tracking") == "serial"
    if serial and quantity != int(quantity):
        raise ValueError(f"{product['code']} is tracked by serial: a whole number of units")
    # A partial run: the first shift reports part of the order and confirms it as a part;
    # the second shift the rest, with the final confirmation.
    first = int(quantity // 2) if partial and quantity >= 2 else 0
    shifts = [first, quantity - first] if first else [quantity]
    used_lots = defaultdict(int)
    pool = _SerialPool(lots, used_serials)
    output_lot = None
    serials = []
    for shift, part in enumerate(shifts):
        share = part / quantity
        if serial:
            for _unit in range(int(part)):
                number = len(serials) + 1
                serials.append(f"{order['order_id'].replace('/', '-')}-SN{number:03d}")
                components = _unit_components(order, lots, pool, number - 1, quantity)
                events.append(
                    (
                        "output_produced",
                        {
                            "product": product["code"],
                            "quantity": 1,
                            "uom": order["uom"],
                            "serials": [serials[-1]],
                            **({"components": components} if components else {}),
                        },
                    )
                )
        else:
            events += _consumption(order, lots, used_lots, share, rng, scrap_reasons, shift)
            if shift == 0:
                events += _untracked_scrap(order, operations, rng, scrap_reasons)
            output = {"product": product["code"], "quantity": _round(part), "uom": order["uom"]}
            if product.get("tracking") == "lot":
                output_lot = f"{order['order_id'].replace('/', '-')}-L{shift + 1}"
                output["lot"] = output_lot
            events.append(("output_produced", output))
        if shift < len(shifts) - 1:
            events.append(("order_completed", {"final": False}))
    for characteristic in quality_checks:
        failed = quality_fail if quality_fail is not None else rng.random() < 0.1
        check = {
            "characteristic": characteristic,
            "result": "fail" if failed else "pass",
            "product": product["code"],
            "measurements": [{"name": "Function", "value": "defect" if failed else "ok"}],
            "inspector": "SIM",
        }
        if output_lot:
            check["lot"] = output_lot
        events.append(("quality_result", check))
    if serial and rework:
        # The first unit fails its final test after it was reported: sent to rework.
        events += _rework(
            product, order["uom"], {"serials": serials[:1]}, rework, rng, scrap_reasons
        )
    events.append(("order_completed", {}))
    if not serial and rework:
        # What a lot of the order comes back with from the customer's incoming check.
        lot = {"lot": output_lot} if output_lot else {}
        events += _rework(product, order["uom"], lot, rework, rng, scrap_reasons)
    return events


class _SerialPool:
    """Serials of serial-tracked components, each used once."""

    def __init__(self, lots, used=None):
        self.lots = lots
        self.used = set() if used is None else used

    def take(self, code):
        for serial in self.lots.get(code) or []:
            if (code, serial) not in self.used:
                self.used.add((code, serial))
                return serial
        raise ValueError(f"the shop floor has no serial of {code} left: register more")


def _unit_components(order, lots, pool, index, quantity):
    """What went into one unit: a unit's share of each component, with its lot (one lot
    per unit, in turn) or serials."""
    parts = []
    for component in order.get("components") or []:
        code = component["product"]["code"]
        each = _round(component["quantity"] / quantity)
        if not each:
            continue
        part = {"product": code, "quantity": each, "uom": component["uom"]}
        tracking = component["product"].get("tracking", "none")
        if tracking == "serial":
            part["serials"] = [pool.take(code) for _ in range(int(each))]
        elif tracking == "lot":
            available = lots.get(code) or []
            if not available:
                raise ValueError(f"the shop floor has no lot of {code}: register lots for it")
            part["lot"] = available[index % len(available)]
        parts.append(part)
    return parts


def _consumption(order, lots, used_lots, share, rng, scrap_reasons, shift):
    """Consumption of a share of the order's components (split over two lots when there
    are two, as a line changing boxes), and scrap of tracked components by chance."""
    events = []
    for component in order.get("components") or []:
        product = component["product"]
        code = product["code"]
        total = _round(component["quantity"] * share)
        if not total:
            continue
        tracking = product.get("tracking", "none")
        if tracking == "none":
            events.append(
                ("material_consumed", {"product": code, "quantity": total, "uom": component["uom"]})
            )
            continue
        available = lots.get(code) or []
        if not available:
            raise ValueError(f"the shop floor has no lot of {code}: register lots for it")
        if tracking == "serial":
            raise ValueError(f"{code} is tracked by serial: the simulator reports lots only")
        parts = [total] if len(available) == 1 or total < 2 else [total // 2, total - total // 2]
        for part in parts:
            lot = available[used_lots[code] % len(available)]
            used_lots[code] += 1
            events.append(
                (
                    "material_consumed",
                    {
                        "product": code,
                        "quantity": _round(part),
                        "uom": component["uom"],
                        "lot": lot,
                    },
                )
            )
        if shift == 0 and rng.random() < 0.35:
            lot = available[used_lots[code] % len(available)]
            events.append(
                (
                    "scrap_reported",
                    {
                        "product": code,
                        "quantity": 1,
                        "uom": component["uom"],
                        "lot": lot,
                        "reason": rng.choice(list(scrap_reasons)),
                    },
                )
            )
    return events


def _untracked_scrap(order, operations, rng, scrap_reasons):
    untracked = [
        c
        for c in order.get("components") or []
        if c["product"].get("tracking", "none") == "none" and c["quantity"]
    ]
    if not untracked or rng.random() >= 0.35:
        return []
    component = rng.choice(untracked)
    return [
        (
            "scrap_reported",
            {
                "product": component["product"]["code"],
                "quantity": 1,
                "uom": component["uom"],
                "reason": rng.choice(list(scrap_reasons)),
                **({"operation": operations[0]["sequence"]} if operations else {}),
            },
        )
    ]


def _rework(product, uom, which, result, rng, reasons):
    """One unit (or one of a lot) sent to rework for a reason, then reworked good or
    scrapped."""
    unit = {"product": product["code"], "quantity": 1, "uom": uom, **which}
    return [
        ("rework_started", {**unit, "reason": rng.choice(list(reasons))}),
        ("rework_completed", {**unit, "result": result}),
    ]


def totals(events):
    """What the shop floor reported per order: the figures Odoo must end up with.

    ``events`` are event documents (``mes.event/1``). Returns, per order reference:
    ``produced`` {product: qty}, ``serials`` {product: [serial, ...]} (the finished
    units), ``consumed`` {product: {lot or serial: qty}} (components reported with a
    unit included), ``scrap`` {reason: {product: qty}} (units scrapped after rework,
    and the parts rework replaced, under the rework's reason), ``rework`` {reason:
    {"good" | "scrapped": qty}}, ``labor_minutes`` {operator: minutes},
    ``downtime_minutes`` {resource: minutes},
    ``quality`` {characteristic: "pass" | "fail"} (the last result of each).
    """
    out = defaultdict(
        lambda: {
            "produced": defaultdict(float),
            "serials": defaultdict(list),
            "consumed": defaultdict(lambda: defaultdict(float)),
            "scrap": defaultdict(lambda: defaultdict(float)),
            "rework": defaultdict(lambda: defaultdict(float)),
            "labor_minutes": defaultdict(float),
            "downtime_minutes": defaultdict(float),
            "quality": {},
        }
    )
    starts = {}
    reworks = {}
    for event in events:
        data = event["data"]
        kind = event["event_type"]
        ref = event.get("order_ref") or ""
        order = out[ref]
        if kind == "material_consumed":
            _consumed(order, data)
        elif kind == "output_produced":
            order["produced"][data["product"]] += data["quantity"]
            if data.get("serials"):
                order["serials"][data["product"]] += data["serials"]
            for component in data.get("components") or []:
                _consumed(order, component)
        elif kind == "scrap_reported":
            order["scrap"][data["reason"]][data["product"]] += data["quantity"]
        elif kind == "rework_started":
            reworks[_unit_key(ref, data)] = data["reason"]
        elif kind == "rework_completed":
            reason = reworks.get(_unit_key(ref, data), "")
            order["rework"][reason][data["result"]] += data["quantity"]
            if data["result"] == "scrapped":
                order["scrap"][data.get("reason") or reason][data["product"]] += data["quantity"]
            for part in data.get("components") or []:
                order["scrap"][reason][part["product"]] += part["quantity"]
        elif kind in ("operation_progress", "operation_completed"):
            for item in data.get("operators") or []:
                order["labor_minutes"][item["operator"]] += item["minutes"]
        elif kind == "quality_result":
            order["quality"][data["characteristic"]] = data["result"]
        elif kind == "downtime_started":
            starts[data["downtime_id"]] = data
        elif kind == "downtime_ended" and data["downtime_id"] in starts:
            start = datetime.fromisoformat(starts[data["downtime_id"]]["started_at"])
            minutes = (datetime.fromisoformat(data["ended_at"]) - start).total_seconds() / 60
            order["downtime_minutes"][data["resource"]] += minutes
    out.pop("", None)
    for order in out.values():
        order["serials"] = {
            product: sorted(serials) for product, serials in order["serials"].items()
        }
    return {ref: _plain(values) for ref, values in out.items()}


def _consumed(order, data):
    serials = data.get("serials") or []
    for serial in serials:
        order["consumed"][data["product"]][serial] += data["quantity"] / len(serials)
    if not serials:
        order["consumed"][data["product"]][data.get("lot") or ""] += data["quantity"]


def _unit_key(ref, data):
    return (ref, data["product"], tuple(data.get("serials") or ()), data.get("lot") or "")


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return _round(value) if isinstance(value, float) else value
