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
):
    """The events of one order run from start to finish, as ``(event_type, data)`` pairs.

    ``order`` is the order document Odoo sent (schema ``mes.order/1``); ``lots``
    maps a product code to the lot numbers the shop floor has of it, used in turn.
    The run is reproducible for a given seed (default: the order id). ``breakdown``
    (a stop of the first resource for the first downtime reason, 30 minutes) and
    ``quality_fail`` (the quality checks of the output fail) force those incidents
    when true, leave them out when false, and leave them to chance when None.
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

    for operation in operations:
        minutes = operation.get("duration_minutes") or 0
        setup = _round(min(5.0, minutes / 4))
        run = _round(minutes - setup)
        clock += timedelta(minutes=setup + run)
        events.append(
            (
                "operation_completed",
                {
                    "operation": operation["sequence"],
                    "resource": operation["resource"],
                    "good_quantity": quantity,
                    "uom": order["uom"],
                    "setup_minutes": setup,
                    "run_minutes": run,
                    "ended_at": clock.isoformat(),
                },
            )
        )

    used_lots = defaultdict(int)
    for component in order.get("components") or []:
        product = component["product"]
        code = product["code"]
        total = component["quantity"]
        if not total:
            continue
        tracking = product.get("tracking", "none")
        if tracking == "none":
            events.append(
                (
                    "material_consumed",
                    {"product": code, "quantity": _round(total), "uom": component["uom"]},
                )
            )
            continue
        available = lots.get(code) or []
        if not available:
            raise ValueError(f"the shop floor has no lot of {code}: register lots for it")
        if tracking == "serial":
            raise ValueError(f"{code} is tracked by serial: the simulator reports lots only")
        # Split the quantity over two lots when there are two, as a line changing boxes.
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
        if rng.random() < 0.35:
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

    untracked = [
        c
        for c in order.get("components") or []
        if c["product"].get("tracking", "none") == "none" and c["quantity"]
    ]
    if untracked and rng.random() < 0.35:
        component = rng.choice(untracked)
        events.append(
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
        )

    output = {"product": order["product"]["code"], "quantity": quantity, "uom": order["uom"]}
    if order["product"].get("tracking") == "lot":
        output["lot"] = f"{order['order_id'].replace('/', '-')}-L1"
    events.append(("output_produced", output))
    for characteristic in quality_checks:
        failed = quality_fail if quality_fail is not None else rng.random() < 0.1
        check = {
            "characteristic": characteristic,
            "result": "fail" if failed else "pass",
            "product": output["product"],
            "measurements": [{"name": "Function", "value": "defect" if failed else "ok"}],
            "inspector": "SIM",
        }
        if "lot" in output:
            check["lot"] = output["lot"]
        events.append(("quality_result", check))
    events.append(("order_completed", {}))
    return events


def totals(events):
    """What the shop floor reported per order: the figures Odoo must end up with.

    ``events`` are event documents (``mes.event/1``). Returns, per order reference:
    ``produced`` {product: qty}, ``consumed`` {product: {lot: qty}}, ``scrap``
    {reason: {product: qty}}, ``downtime_minutes`` {resource: minutes}, ``quality``
    {characteristic: "pass" | "fail"} (the last result of each).
    """
    out = defaultdict(
        lambda: {
            "produced": defaultdict(float),
            "consumed": defaultdict(lambda: defaultdict(float)),
            "scrap": defaultdict(lambda: defaultdict(float)),
            "downtime_minutes": defaultdict(float),
            "quality": {},
        }
    )
    starts = {}
    for event in events:
        data = event["data"]
        kind = event["event_type"]
        order = out[event.get("order_ref") or ""]
        if kind == "material_consumed":
            order["consumed"][data["product"]][data.get("lot") or ""] += data["quantity"]
        elif kind == "output_produced":
            order["produced"][data["product"]] += data["quantity"]
        elif kind == "scrap_reported":
            order["scrap"][data["reason"]][data["product"]] += data["quantity"]
        elif kind == "quality_result":
            order["quality"][data["characteristic"]] = data["result"]
        elif kind == "downtime_started":
            starts[data["downtime_id"]] = data
        elif kind == "downtime_ended" and data["downtime_id"] in starts:
            start = datetime.fromisoformat(starts[data["downtime_id"]]["started_at"])
            minutes = (datetime.fromisoformat(data["ended_at"]) - start).total_seconds() / 60
            order["downtime_minutes"][data["resource"]] += minutes
    out.pop("", None)
    return {ref: _plain(values) for ref, values in out.items()}


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return _round(value) if isinstance(value, float) else value
