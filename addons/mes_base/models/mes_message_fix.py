"""What a person reads of a cause, and the one screen that fixes it.

A cause is stored as codes (``unmapped_product``, ``MES-4711``): grouped, counted and
cleared by them. People read a sentence, and get the screen where the fix is made:
the mapping form with the MES code filled in, the lot to create, the order.
"""

from odoo import api, models
from odoo.tools.translate import LazyTranslate

_lt = LazyTranslate(__name__)

# Sentences of the causes people meet most; any other reads "code: value".
CAUSE_SENTENCES = {
    "unmapped_product": _lt("MES product code %s is not mapped to a product"),
    "unmapped_workcenter": _lt("MES resource %s is not mapped to a work center"),
    "unmapped_uom": _lt("MES unit %s is not mapped to a unit of measure"),
    "unmapped_scrap_reason": _lt("MES scrap reason %s is not mapped"),
    "unmapped_downtime_reason": _lt("MES downtime reason %s is not mapped"),
    "unmapped_quality_test": _lt("MES quality characteristic %s is not mapped"),
    "unknown_lot": _lt("Lot %s is not in Odoo yet"),
    "unknown_order": _lt("Order %s is not in Odoo"),
    "unknown_mes_order": _lt("No order of Odoo is MES order %s"),
    "order_not_confirmed": _lt("Order %s is not confirmed"),
    "order_closed": _lt("Order %s is already closed"),
    "missing_sequence": _lt("Earlier reports of the order have not arrived: %s"),
    "component_not_in_order": _lt("%s is not a component of the order"),
    "invalid_message": _lt("The MES sent an invalid report (%s)"),
    "invalid_json": _lt("The MES sent a body that is not JSON"),
    "invalid_b2mml": _lt("The MES sent a B2MML document that cannot be read"),
    "job_failed": _lt("The processing job failed (%s)"),
    "internal_error": _lt("Unexpected error in Odoo"),
}


class MesMessage(models.Model):
    _inherit = "mes.message"  # pylint: disable=consider-merging-classes-inherited

    @api.model
    def _cause_sentence(self, cause_code, cause_value):
        """A cause as people read it (``cause_code``, ``cause_value`` as stored)."""
        if not cause_code:
            return self.env._("No cause recorded")
        if cause_code.startswith("mes_http_"):
            status = cause_code.removeprefix("mes_http_")
            return self.env._("The MES refused it (HTTP %s)", status)
        sentence = CAUSE_SENTENCES.get(cause_code)
        if not sentence:
            return f"{cause_code}: {cause_value}" if cause_value else cause_code
        sentence = sentence._translate(self.env.lang)
        if "%s" in sentence:
            return sentence % (cause_value or "?")
        return sentence

    def _fix_action(self):
        """(label, action) of the screen that fixes what stops this message."""
        self.ensure_one()
        code, value = self.cause_code or "", self.cause_value or ""
        if code.startswith("unmapped_"):
            mapping_type = code.removeprefix("unmapped_")
            return self.env._("Map %s", value), {
                "type": "ir.actions.act_window",
                "name": self.env._("Map MES code %s", value),
                "res_model": "mes.mapping",
                "views": [(False, "form")],
                "target": "new",
                "context": {
                    "default_backend_id": self.backend_id.id,
                    "default_mapping_type": mapping_type,
                    "default_mes_code": value,
                },
            }
        if code == "unknown_lot" and self.reported_lot:
            return self.env._("Create lot %s", self.reported_lot), {
                "type": "ir.actions.act_window",
                "name": self.env._("Lot %s", self.reported_lot),
                "res_model": "stock.lot",
                "views": [(False, "form")],
                "target": "current",
                "context": {
                    "default_name": self.reported_lot,
                    "default_product_id": self.product_id.id,
                    "default_company_id": self.company_id.id,
                },
            }
        if code == "unknown_mes_order" and value:
            # The planner picks the order the MES runs under that id and adopts it.
            return self.env._("Adopt MES order %s", value), {
                "type": "ir.actions.act_window",
                "name": self.env._("Which order is MES order %s?", value),
                "res_model": "mrp.production",
                "views": [(False, "list"), (False, "form")],
                "domain": [
                    ("company_id", "=", self.company_id.id),
                    ("state", "in", ("confirmed", "progress", "to_close")),
                    ("mes_order_id", "=", False),
                ],
                "context": {"mes_adopt_order_id": value},
                "target": "current",
            }
        if code in ("order_not_confirmed", "order_closed") and self.production_id:
            return self.env._("Open %s", self.production_id.name), {
                "type": "ir.actions.act_window",
                "res_model": "mrp.production",
                "res_id": self.production_id.id,
                "views": [(False, "form")],
            }
        return self.env._("Open the report"), {
            "type": "ir.actions.act_window",
            "res_model": "mes.message",
            "res_id": self.id,
            "views": [(False, "form")],
        }

    def action_fix(self):
        """Open the screen that fixes what stops this message (then Retry)."""
        self.ensure_one()
        self.check_access("read")
        return self._fix_action()[1]
