import socket

from odoo.exceptions import UserError, ValidationError
from odoo.tests import new_test_user

from .common import MesCase


class TestBackendAdmin(MesCase):
    """What an integrator meets when setting up a backend: a URL Odoo can call, a
    connection test that answers in a sentence, and a trace of every change."""

    def test_an_address_the_mes_cannot_be_reached_at_is_refused_naming_it(self):
        for url in (
            "127.0.0.1:8602",
            "htp://mes.plant.example",
            "ftp://mes.plant.example",
            "http://",
            "http://mes plant",
            "http://mes.plant.example:99999",
        ):
            with (
                self.subTest(url=url),
                self.assertRaises(ValidationError) as caught,
                self.env.cr.savepoint(),
            ):
                self.backend.base_url = url
            self.assertIn(repr(url), str(caught.exception))
        for url in ("http://10.0.0.5:8070", "https://mes.plant.example/api"):
            self.backend.base_url = url
            self.assertEqual(self.backend.base_url, url)

    def test_connection_test_answers_in_a_sentence(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        # Nothing listens there once the socket is closed.
        self.backend.write({"base_url": f"http://127.0.0.1:{port}", "timeout_connect": 1})
        with self.assertRaisesRegex(
            UserError, rf"^The MES at http://127.0.0.1:{port} did not answer as expected: "
        ):
            self.backend.action_test_connection()
        self.backend.base_url = self.simulator.url
        answer = self.backend.action_test_connection()
        self.assertEqual(answer["params"]["message"], f"The MES at {self.simulator.url} answers.")

    def test_changes_and_keys_leave_a_trace_without_the_keys(self):
        manager = new_test_user(self.env, "mes_admin_trace", groups="mes_base.group_mes_manager")
        backend = self.backend.with_user(manager).with_context(tracking_disable=False)
        old_url = self.backend.base_url
        backend.write(
            {"base_url": "http://10.0.0.5:8070", "outbound_api_key_input": "k" * 20 + "WXYZ"}
        )
        # Tracking values are written when the transaction commits (precommit): as
        # mail's own tests do, flushed here.
        self.env.flush_all()
        self.env.cr.flush()
        messages = self.backend.message_ids
        tracked = messages.tracking_value_ids.filtered(lambda t: t.field_id.name == "base_url")
        self.assertEqual(
            (tracked.old_value_char, tracked.new_value_char), (old_url, "http://10.0.0.5:8070")
        )
        self.assertEqual(tracked.mail_message_id.author_id, manager.partner_id)
        note = messages.filtered(lambda m: "replaced" in (m.body or ""))
        self.assertEqual(len(note), 1)
        self.assertIn("(…WXYZ)", note.body)
        self.assertIn(manager.name, note.body)
        self.assertNotIn("k" * 20, str(messages.mapped("body")))
        self.assertEqual(self.backend._fields["intake_url"].string, "Intake URL")

    def test_a_new_mapping_shows_only_the_target_of_its_type(self):
        arch = self.env["mes.mapping"].get_view(view_type="form")["arch"]
        self.assertIn('name="product_id" invisible="mapping_type != \'product\'"', arch)
        self.assertIn('name="loss_id" invisible="mapping_type != \'downtime_reason\'"', arch)
        action = self.env.ref("mes_base.mes_mapping_action")
        self.assertEqual(action.view_mode, "list,form")
