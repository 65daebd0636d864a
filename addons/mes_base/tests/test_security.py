from odoo.exceptions import AccessError
from odoo.tests import new_test_user

from .common import MesCase


class TestSecurity(MesCase):
    def test_credentials_visible_to_managers_only(self):
        planner = new_test_user(self.env, "mes_planner", groups="mes_base.group_mes_user")
        manager = new_test_user(self.env, "mes_integrator", groups="mes_base.group_mes_manager")
        self.assertEqual(self.backend.with_user(manager).outbound_api_key, "test-odoo-to-mes-key")
        with self.assertRaises(AccessError):
            self.backend.with_user(planner).outbound_api_key  # noqa: B018
        with self.assertRaises(AccessError):
            self.backend.with_user(manager).inbound_key_hash  # noqa: B018
        with self.assertRaises(AccessError):
            self.backend.with_user(planner).write({"base_url": "http://127.0.0.1:1"})
        self.assertNotIn("test-mes-to-odoo", self.backend.sudo().inbound_key_hash)

    def test_inbound_key_check(self):
        self.assertTrue(self.backend._check_inbound_key("test-mes-to-odoo-key-0123456789"))
        self.assertFalse(self.backend._check_inbound_key("test-mes-to-odoo-key-012345678"))
        self.assertFalse(self.backend._check_inbound_key(None))

    def test_messages_per_company(self):
        other = self.env["res.company"].create({"name": "Other plant"})
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
