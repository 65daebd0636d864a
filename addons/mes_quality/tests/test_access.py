from odoo.addons.mes_base.tests.access import Row
from odoo.addons.mes_base.tests.test_access import AccessCase

VIEWERS = ("planner", "manager", "quality")
QUALITY = ("quality",)


class TestQualityAccess(AccessCase):
    USER_KINDS = {
        **AccessCase.USER_KINDS,
        "quality": "quality_control_oca.group_quality_control_user,mes_base.group_mes_user",
    }
    ADDONS = ("mes_quality",)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.holds = {}
        for key, company in cls.companies.items():
            lot = cls.env["stock.lot"].create(
                {"name": f"HOLD-{key}", "product_id": cls.housing.id, "company_id": company.id}
            )
            cls.holds[key] = cls.env["mes.quality.hold"].create(
                {
                    "lot_id": lot.id,
                    "company_id": company.id,
                    "mode": "block",
                    "state": "held",
                    "reason": "diameter out of tolerance",
                }
            )

    def _rows(self):
        def hold(env, key):
            return env["mes.quality.hold"].browse(self.holds[key].id)

        return [
            Row("mes.quality.hold", "read", VIEWERS, lambda c, e, k: hold(e, k).read(["state"])),
            Row(
                "mes.quality.hold",
                "write",
                (),
                lambda c, e, k: hold(e, k).write({"state": "released"}),
            ),
            Row(
                "stock.lot",
                "write mes_on_hold",
                (),
                lambda c, e, k: (
                    e["stock.lot"].browse(self.holds[k].lot_id.id).write({"mes_on_hold": False})
                ),
            ),
            Row(
                "mes.quality.hold",
                "action_release",
                QUALITY,
                lambda c, e, k: hold(e, k).action_release("measured again: in tolerance"),
            ),
            Row(
                "stock.lot",
                "action_view_mes_holds",
                VIEWERS,
                lambda c, e, k: (
                    e["stock.lot"].browse(self.holds[k].lot_id.id).action_view_mes_holds()
                ),
            ),
        ]

    def test_every_group_and_company_against_every_model_and_method(self):
        self.assertMatrix(self._rows())

    def test_every_public_method_has_a_row(self):
        self.assertEveryPublicMethodCovered(self._rows())
