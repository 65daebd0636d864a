from odoo import models

from odoo.addons.mes_base.exceptions import MesDataError
from odoo.addons.mes_base.models.mes_event_processor import utc_naive


class MesEventProcessor(models.AbstractModel):
    _inherit = "mes.event.processor"

    def _lot(self, message, product, name, field, create=False):
        lot = super()._lot(message, product, name, field, create=create)
        if lot and message.message_type == "material_consumed" and lot.mes_on_hold:
            hold = lot.mes_hold_ids.filtered(lambda h: h.state == "held")[:1]
            raise MesDataError(
                "lot_on_hold",
                self.env._(
                    "%(field)s: lot %(lot)s of %(product)s is on quality hold (%(why)s) and "
                    "cannot be consumed. A quality user releases it, or the MES consumes "
                    "another lot; then retry.",
                    field=field,
                    lot=name,
                    product=product.display_name,
                    why=hold.reason,
                ),
                value=name,
            )
        return lot

    def _process_quality_result(self, message, event):
        """A quality check the MES ran: an OCA inspection of the order (product, lot), with
        what was measured; a failed one holds the lot as the backend says, a passing one
        releases the lot from an earlier failure of the same characteristic."""
        data = event["data"]
        backend = message.backend_id
        production = self._production(message, event, lock=False, closed_ok=True)
        test = backend._resolve("quality_test", data["characteristic"], "data.characteristic")
        product = (
            self._product(message, data["product"], "data.product")
            if data.get("product")
            else production.product_id
        )
        lot = self._lot(message, product, data["lot"], "data.lot") if data.get("lot") else None
        quantity = (
            self._quantity(message, data, product, product.uom_id)
            if data.get("quantity")
            else production.product_qty
        )
        inspection = self.env["qc.inspection"].create(
            {
                "name": "/",
                "object_id": f"mrp.production,{production.id}",
                "test": test.id,
                "qty": quantity,
                "date": utc_naive(event["occurred_at"]),
                "company_id": message.company_id.id,
                "user": backend.user_id.id,
                "mes_message_id": message.id,
                "mes_result": data["result"],
                "mes_characteristic": data["characteristic"],
                "internal_notes": "\n".join(
                    filter(None, [data.get("inspector"), data.get("comment")])
                )
                or False,
            }
        )
        inspection.write({"product_id": product.id, "lot_id": lot.id if lot else False})
        inspection.inspection_lines = [
            (0, 0, values) for values in self._measured_lines(message, test, data)
        ]
        inspection.action_todo()
        within_limits = all(inspection.inspection_lines.mapped("success"))
        passed = data["result"] == "pass" and within_limits
        inspection.write({"state": "success" if passed else "failed"})
        if data["result"] == "pass" and not within_limits:
            inspection.message_post(
                body=self.env._(
                    "The MES reported a pass, but measurements are outside the test's limits: "
                    "recorded as failed."
                )
            )
        outcome = self.env._("passed") if passed else self.env._("failed")
        if lot and not passed and backend.quality_hold != "none":
            hold = self.env["mes.quality.hold"]._hold(lot, inspection, message, backend)
            outcome += self.env._(", lot %(lot)s on hold (%(mode)s)", lot=lot.name, mode=hold.mode)
        elif lot and passed:
            held = lot.mes_hold_ids.filtered(
                lambda h: h.state == "held" and h.characteristic == data["characteristic"]
            )
            held._release(
                self.env._(
                    "Released: %(char)s passed in %(inspection)s.",
                    char=data["characteristic"],
                    inspection=inspection.name,
                )
            )
            if held:
                outcome += self.env._(", lot %s released", lot.name)
        return self.env._(
            "inspection %(name)s of %(product)s%(lot)s: %(outcome)s",
            name=inspection.name,
            product=product.display_name,
            lot=f" lot {lot.name}" if lot else "",
            outcome=outcome,
        )

    def _measured_lines(self, message, test, data):
        """Inspection lines of the questions the MES measured, with its values."""
        lines = []
        questions = {question.name.strip().lower(): question for question in test.test_lines}
        for index, measurement in enumerate(data.get("measurements") or []):
            field = f"data.measurements[{index}]"
            question = questions.get(measurement["name"].strip().lower())
            if not question:
                raise MesDataError(
                    "unknown_measurement",
                    self.env._(
                        "%(field)s.name: %(name)r is not a question of test %(test)s (its "
                        "questions: %(questions)s). Rename the question or correct the MES.",
                        field=field,
                        name=measurement["name"],
                        test=test.name,
                        questions=", ".join(test.test_lines.mapped("name")),
                    ),
                    value=f"{data['characteristic']}/{measurement['name']}",
                )
            values = self.env["qc.inspection"]._prepare_inspection_line(test, question)
            value = measurement["value"]
            if question.type == "qualitative":
                answer = question.ql_values.filtered(
                    lambda v, value=value: v.name.strip().lower() == str(value).strip().lower()
                )[:1]
                if not answer:
                    raise MesDataError(
                        "unknown_quality_value",
                        self.env._(
                            "%(field)s.value: %(value)r is not an answer of %(question)s "
                            "(answers: %(answers)s).",
                            field=field,
                            value=value,
                            question=question.name,
                            answers=", ".join(question.ql_values.mapped("name")),
                        ),
                        value=f"{question.name}/{value}",
                    )
                values["qualitative_value"] = answer.id
            else:
                if isinstance(value, str):
                    raise MesDataError(
                        "invalid_quality_value",
                        self.env._(
                            "%(field)s.value: %(question)s is measured, %(value)r is no number.",
                            field=field,
                            question=question.name,
                            value=value,
                        ),
                    )
                target = question.uom_id
                if measurement.get("uom") and target:
                    uom = self._unit(
                        message, measurement["uom"], target, f"{field}.uom", question.name
                    )
                    value = uom._compute_quantity(value, target, round=False)
                values["quantitative_value"] = value
            lines.append(values)
        return lines
