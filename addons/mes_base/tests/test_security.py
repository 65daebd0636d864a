from odoo.exceptions import AccessError
from odoo.tests import new_test_user

from .common import MesCase


class TestSecurity(MesCase):
    def test_credentials_readable_by_no_user(self):
        planner = new_test_user(self.env, "mes_planner", groups="mes_base.group_mes_user")
        manager = new_test_user(self.env, "mes_integrator", groups="mes_base.group_mes_manager")
        # The outbound key is read by the code that sends only; managers replace it.
        for user in (planner, manager):
            with self.assertRaises(AccessError):
                self.backend.with_user(user).outbound_api_key  # noqa: B018
        with self.assertRaises(AccessError):
            self.backend.with_user(planner).write({"outbound_api_key_input": "x" * 20})
        with self.assertRaises(AccessError):
            self.backend.with_user(planner).write({"base_url": "http://127.0.0.1:1"})
        self.assertEqual(self.backend._get_client()._api_key, "test-odoo-to-mes-key")
        # The inbound key is kept as Odoo keeps API keys: a salted hash, nothing in clear.
        self.env.cr.execute(
            "SELECT key FROM res_users_apikeys WHERE scope = %s",
            (f"mes_intake:{self.backend.id}",),
        )
        (stored,) = self.env.cr.fetchone()
        self.assertTrue(stored.startswith("$pbkdf2-sha512$"), stored)
        self.assertNotIn("test-mes-to-odoo", stored)

    def test_inbound_key_check(self):
        self.assertTrue(self.backend._check_inbound_key("test-mes-to-odoo-key-0123456789"))
        self.assertFalse(self.backend._check_inbound_key("test-mes-to-odoo-key-012345678"))
        self.assertFalse(self.backend._check_inbound_key(None))
        self.assertFalse(self.backend._check_inbound_key("x" * 10_000))
        # An Odoo API key of the integration user for RPC does not open the intake.
        rpc_key = (
            self.env["res.users.apikeys"]
            .with_user(self.backend.user_id)
            .sudo()
            ._generate(None, "RPC", None)
        )
        self.assertFalse(self.backend._check_inbound_key(rpc_key))

    def test_messages_per_company(self):
        other = self.env["res.company"].create({"name": "Other plant"})
        self.backend.user_id.company_ids += other
        other_backend = self.env["mes.backend"].create(
            {
                "name": "Other MES",
                "code": "OTHER",
                "base_url": "http://127.0.0.1:1",
                "company_id": other.id,
            }
        )
        mine = self.env["mes.message"].create(
            {
                "backend_id": self.backend.id,
                "direction": "inbound",
                "message_type": "unknown",
                "state": "error",
                "payload": "{}",
            }
        )
        theirs = self.env["mes.message"].create(
            {
                "backend_id": other_backend.id,
                "direction": "inbound",
                "message_type": "unknown",
                "state": "error",
                "payload": "{}",
            }
        )
        planner = new_test_user(
            self.env, "mes_planner2", groups="mes_base.group_mes_user", company_id=self.company.id
        )
        visible = (
            self.env["mes.message"].with_user(planner).search([("id", "in", (mine | theirs).ids)])
        )
        self.assertEqual(visible, mine)
        with self.assertRaises(AccessError):
            self.env["mes.message"].with_user(planner).create(
                {
                    "backend_id": self.backend.id,
                    "direction": "inbound",
                    "message_type": "unknown",
                    "state": "received",
                    "payload": "{}",
                }
            )
        with self.assertRaises(AccessError):
            mine.with_user(planner).unlink()

    def test_user_without_group_sees_nothing(self):
        worker = new_test_user(self.env, "shop_worker", groups="base.group_user")
        with self.assertRaises(AccessError):
            self.env["mes.message"].with_user(worker).search([])
