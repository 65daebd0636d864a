from datetime import date

from odoo.addons.mes_base.tests.access import Row
from odoo.addons.mes_base.tests.test_access import AccessCase

PLANNERS = ("planner", "finance", "manager")
FINANCE = ("finance", "manager")
MANAGERS = ("manager",)
NOBODY = ()
# A period long gone: nothing of the tests falls in it, so it may be checked and closed.
PERIOD = {"date_from": date(2001, 1, 1), "date_to": date(2001, 1, 31)}


class TestReconciliationAccess(AccessCase):
    USER_KINDS = {
        **AccessCase.USER_KINDS,
        "finance": "mes_reconciliation.group_mes_reconciliation,account.group_account_user",
    }
    ADDONS = ("mes_reconciliation",)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        recs = cls.env["mes.reconciliation"]
        recs._refresh_productions(cls.productions["c1"] | cls.productions["c2"])
        cls.reconciliations = {
            key: recs.search([("production_id", "=", production.id)])
            for key, production in cls.productions.items()
        }
        cls.closes, cls.closed = {}, {}
        for key, company in cls.companies.items():
            close = cls.env["mes.period.close"]
            cls.closes[key] = close.create({**PERIOD, "company_id": company.id})
            cls.closed[key] = close.create(
                {
                    "date_from": date(2000, 1, 1),
                    "date_to": date(2000, 1, 31),
                    "company_id": company.id,
                }
            )
            cls.closed[key].action_close()
            cls.closes[key].action_run_checks()

    def _rows(self):
        def rec(env, key):
            return env["mes.reconciliation"].browse(self.reconciliations[key].id)

        def close(env, key, closed=False):
            return env["mes.period.close"].browse((self.closed if closed else self.closes)[key].id)

        def new_close(env, key, **extra):
            return env["mes.period.close"].create(
                {
                    "company_id": self.companies[key].id,
                    "date_from": date(2002, 2, 1),
                    "date_to": date(2002, 2, 28),
                    **extra,
                }
            )

        return [
            Row("mes.reconciliation", "read", PLANNERS, lambda c, e, k: rec(e, k).read(["status"])),
            Row(
                "mes.reconciliation",
                "write explanation",
                FINANCE,
                lambda c, e, k: rec(e, k).write({"explanation": "counted twice on the floor"}),
            ),
            Row(
                "mes.reconciliation",
                "write",
                NOBODY,
                lambda c, e, k: rec(e, k).write({"status": "balanced"}),
            ),
            Row(
                "mes.reconciliation",
                "action_refresh",
                PLANNERS,
                lambda c, e, k: rec(e, k).action_refresh(),
            ),
            Row(
                "mes.reconciliation",
                "action_refresh_list",
                PLANNERS,
                lambda c, e, k: rec(e, k).action_refresh_list(),
            ),
            Row(
                "mes.reconciliation",
                "action_view_messages",
                PLANNERS,
                lambda c, e, k: rec(e, k).action_view_messages(),
            ),
            Row(
                "mes.reconciliation.line",
                "read",
                PLANNERS,
                lambda c, e, k: (
                    e["mes.reconciliation.line"]
                    .browse(self.reconciliations[k].line_ids.ids[:1])
                    .read(["display_name"])
                ),
            ),
            Row("mes.period.close", "read", FINANCE, lambda c, e, k: close(e, k).read(["state"])),
            Row("mes.period.close", "create", FINANCE, lambda c, e, k: new_close(e, k)),
            Row(
                "mes.period.close",
                "create closed",
                NOBODY,
                lambda c, e, k: new_close(
                    e, k, state="closed", closed_by_id=self.users[("manager", k)].id
                ),
            ),
            Row(
                "mes.period.close",
                "write",
                FINANCE,
                lambda c, e, k: close(e, k).write({"date_to": date(2001, 1, 30)}),
            ),
            Row(
                "mes.period.close",
                "write state",
                NOBODY,
                lambda c, e, k: close(e, k).write({"state": "closed"}),
            ),
            Row("mes.period.close", "unlink", FINANCE, lambda c, e, k: close(e, k).unlink()),
            Row(
                "mes.period.close",
                "action_run_checks",
                FINANCE,
                lambda c, e, k: close(e, k).action_run_checks(),
            ),
            Row(
                "mes.period.close",
                "action_close",
                FINANCE,
                lambda c, e, k: close(e, k).action_close(),
            ),
            Row(
                "mes.period.close",
                "action_reopen",
                MANAGERS,
                lambda c, e, k: close(e, k, closed=True).action_reopen(),
            ),
            Row(
                "mes.period.close",
                "action_view_reconciliations",
                FINANCE,
                lambda c, e, k: close(e, k).action_view_reconciliations(),
            ),
            Row(
                "mes.period.close.check",
                "read",
                FINANCE,
                lambda c, e, k: (
                    e["mes.period.close.check"]
                    .browse(self.closes[k].check_ids[:1].ids)
                    .read(["name", "count"])
                ),
            ),
            Row(
                "mes.period.close.check",
                "action_open",
                FINANCE,
                lambda c, e, k: close(e, k).check_ids[0].action_open(),
            ),
            Row(
                "mes.reconciliation.export",
                "action_export",
                FINANCE,
                lambda c, e, k: (
                    e["mes.reconciliation.export"]
                    .create({**PERIOD, "company_id": self.companies[k].id})
                    .action_export()
                ),
            ),
        ]

    def test_every_group_and_company_against_every_model_and_method(self):
        self.assertMatrix(self._rows())

    def test_every_public_method_has_a_row(self):
        self.assertEveryPublicMethodCovered(self._rows())
