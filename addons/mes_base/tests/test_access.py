import json
from unittest.mock import patch

from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from odoo.addons.queue_job.tests.common import trap_jobs

from ..models import mes_backend
from ..wizards.mes_backend_key_wizard import key_digest
from .access import AccessMatrixMixin, Row
from .common import INBOUND_KEY, MesCase, recent

PLANNERS = ("planner", "manager")
MANAGERS = ("manager",)
NOBODY = ()


def _message(case, env, key):
    return env["mes.message"].browse(case.messages[key].id)


class AccessCase(AccessMatrixMixin, MesCase):
    """Both companies have an MES backend, a mapping, an order, a message in error and its
    error cause, and a queue job."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_companies()
        cls.backends = {"c1": cls.backend}
        cls.backend.user_id.company_ids += cls.companies["c2"]
        cls.backends["c2"] = cls.env["mes.backend"].create(
            {
                "name": "Second MES",
                "code": "TEST2",
                "base_url": cls.simulator.url,
                "company_id": cls.companies["c2"].id,
            }
        )
        cls.backends["c2"]._set_inbound_key("second-plant-inbound-key-0123")
        cls.backends["c2"].outbound_api_key = cls.backend.outbound_api_key
        # Backends without messages, to delete.
        cls.spare_backends = {
            key: cls.env["mes.backend"].create(
                {
                    "name": f"Spare {key}",
                    "code": f"SPARE-{key}",
                    "base_url": "http://127.0.0.1:9",
                    "company_id": company.id,
                }
            )
            for key, company in cls.companies.items()
        }
        # A stopped master data resync per company, to resume, stop or look into.
        cls.resyncs = {
            key: cls.env["mes.master.resync"].create(
                {"backend_id": cls.spare_backends[key].id, "state": "stopped"}
            )
            for key in cls.companies
        }
        cls.messages, cls.productions, cls.mappings, cls.causes = {}, {}, {}, {}
        for key, company in cls.companies.items():
            backend = cls.backends[key]
            # A valid report that could not be posted: in error, to retry or cancel.
            event = {
                "schema": "mes.event/1",
                "event_id": f"ACL-{key}",
                "event_type": "order_started",
                "order_ref": f"NO-SUCH-ORDER-{key}",
                "occurred_at": recent(),
                "data": {},
            }
            answer = cls.env["mes.message"]._intake(backend, json.dumps(event), event)
            cls.messages[key] = cls.env["mes.message"].browse(answer["message_id"])
            cls.messages[key]._set_error("unknown_order", "no such order", event["order_ref"])
            cls.mappings[key] = cls.env["mes.mapping"].create(
                {
                    "backend_id": backend.id,
                    "mapping_type": "product",
                    "mes_code": f"ACL-{key}",
                    "product_id": cls.screw.id,
                }
            )
            production = cls.env["mrp.production"].create(
                {
                    "product_id": cls.pump.id,
                    "product_qty": 1,
                    # The test routing's work centers are of the first company.
                    "bom_id": cls.bom.id if key == "c1" else False,
                    "company_id": company.id,
                }
            )
            backend.export_trigger = "manual"
            production.action_confirm()
            cls.productions[key] = production
        cls.env["mes.error.cause"]._cron_sync()
        for key in cls.companies:
            cls.causes[key] = cls.messages[key].error_cause_id
        cls.env.flush_all()


class TestAccessMatrix(AccessCase):
    def _rows(self):
        def backend(env, key):
            return env["mes.backend"].browse(self.backends[key].id)

        def production(env, key):
            return env["mrp.production"].browse(self.productions[key].id)

        def release(case, env, key):
            with trap_jobs():
                production(env, key).action_mes_release()

        def key_wizard_read(case, env, key):
            # Another user's wizard (the key itself is never stored in it anyway).
            wizard = self.env["mes.backend.key.wizard"].create(
                {"backend_id": self.backends[key].id}
            )
            env["mes.backend.key.wizard"].browse(wizard.id).read(["backend_id"])

        def fix_stopper(case, env, key):
            # Refused, or answered: the screen of the fix, or that nothing holds the order up.
            try:
                production(env, key).action_fix_mes_stopper()
            except AccessError:
                raise
            except UserError as err:
                case.assertIn("Nothing holds up", str(err))

        def key_wizard_use(case, env, key):
            # A dialog of the user's own (as the action makes it), its key put in use.
            value = "k" * 20 + "-access-matrix-key"
            wizard = (
                env["mes.backend.key.wizard"]
                .sudo()
                .create({"backend_id": self.backends[key].id, "digest": key_digest(value)})
            )
            env["mes.backend.key.wizard"].browse(wizard.id).with_context(
                mes_new_inbound_key=value
            ).action_use()

        def resync(case, env, key):
            self.backends[key].sudo().master_data_enabled = True
            with trap_jobs():
                backend(env, key).action_resync_master_data()

        def resync_run(env, key):
            return env["mes.master.resync"].browse(self.resyncs[key].id)

        def resume(case, env, key):
            self.spare_backends[key].sudo().master_data_enabled = True
            with trap_jobs():
                resync_run(env, key).action_resume()

        def retry(case, env, key):
            with trap_jobs():
                _message(case, env, key).action_retry()

        return [
            # mes.backend
            Row("mes.backend", "read", PLANNERS, lambda c, e, k: backend(e, k).read(["name"])),
            Row(
                "mes.backend",
                "create",
                MANAGERS,
                lambda c, e, k: e["mes.backend"].create(
                    {
                        "name": "New",
                        "code": f"NEW-{k}",
                        "base_url": "http://127.0.0.1:9",
                        "company_id": self.companies[k].id,
                    }
                ),
            ),
            Row(
                "mes.backend",
                "write",
                MANAGERS,
                lambda c, e, k: backend(e, k).write({"timeout_read": 7}),
            ),
            Row(
                "mes.backend",
                "write outbound key",
                MANAGERS,
                lambda c, e, k: backend(e, k).write({"outbound_api_key_input": "new-outbound-key"}),
            ),
            Row(
                "mes.backend",
                "write company",
                NOBODY,
                lambda c, e, k: backend(e, k).write(
                    {"company_id": self.companies["c2" if k == "c1" else "c1"].id}
                ),
            ),
            Row(
                "mes.backend",
                "write integration user",
                NOBODY,
                lambda c, e, k: backend(e, k).write(
                    {"user_id": self.env.ref("base.user_admin").id}
                ),
            ),
            Row(
                "mes.backend",
                "unlink",
                MANAGERS,
                lambda c, e, k: e["mes.backend"].browse(self.spare_backends[k].id).unlink(),
            ),
            Row(
                "mes.backend",
                "action_generate_inbound_key",
                MANAGERS,
                lambda c, e, k: backend(e, k).action_generate_inbound_key(),
            ),
            Row(
                "mes.backend",
                "action_generate_signing_secret",
                MANAGERS,
                lambda c, e, k: backend(e, k).action_generate_signing_secret(),
            ),
            Row(
                "mes.backend",
                "action_revoke_previous_inbound_keys",
                MANAGERS,
                lambda c, e, k: backend(e, k).action_revoke_previous_inbound_keys(),
            ),
            Row(
                "mes.backend",
                "action_test_connection",
                MANAGERS,
                lambda c, e, k: backend(e, k).action_test_connection(),
            ),
            Row(
                "mes.backend",
                "action_pull_now",
                MANAGERS,
                lambda c, e, k: backend(e, k).action_pull_now(),
            ),
            Row(
                "mes.backend",
                "action_view_messages",
                PLANNERS,
                lambda c, e, k: backend(e, k).action_view_messages(),
            ),
            Row("mes.backend", "action_resync_master_data", MANAGERS, resync),
            Row(
                "mes.backend",
                "action_view_master_data",
                PLANNERS,
                lambda c, e, k: backend(e, k).action_view_master_data(),
            ),
            # master data resyncs: MES managers run them, planners look into them
            Row("mes.master.resync", "action_resume", MANAGERS, resume),
            Row(
                "mes.master.resync",
                "action_stop",
                MANAGERS,
                lambda c, e, k: resync_run(e, k).action_stop(),
            ),
            Row(
                "mes.master.resync",
                "action_view_messages",
                PLANNERS,
                lambda c, e, k: resync_run(e, k).action_view_messages(),
            ),
            Row(
                "mes.master.resync",
                "read",
                PLANNERS,
                lambda c, e, k: resync_run(e, k).read(["state"]),
            ),
            Row(
                "mes.master.resync",
                "write",
                NOBODY,
                lambda c, e, k: resync_run(e, k).write({"cursor": 5}),
            ),
            # mes.message
            Row("mes.message", "read", PLANNERS, lambda c, e, k: _message(c, e, k).read(["state"])),
            Row(
                "mes.message",
                "create",
                NOBODY,
                lambda c, e, k: e["mes.message"].create(
                    {
                        "backend_id": self.backends[k].id,
                        "direction": "inbound",
                        "message_type": "unknown",
                        "state": "processed",
                        "payload": "{}",
                    }
                ),
            ),
            Row(
                "mes.message",
                "write",
                NOBODY,
                lambda c, e, k: _message(c, e, k).write({"state": "processed"}),
            ),
            Row("mes.message", "unlink", NOBODY, lambda c, e, k: _message(c, e, k).unlink()),
            Row("mes.message", "action_retry", PLANNERS, retry),
            Row(
                "mes.message",
                "action_cancel",
                PLANNERS,
                lambda c, e, k: _message(c, e, k).action_cancel("not ours"),
            ),
            Row(
                "mes.message",
                "action_open_cancel_wizard",
                PLANNERS,
                lambda c, e, k: _message(c, e, k).action_open_cancel_wizard(),
            ),
            Row(
                "mes.message",
                "action_view_job",
                PLANNERS,
                lambda c, e, k: _message(c, e, k).action_view_job(),
            ),
            # mes.mapping
            Row(
                "mes.mapping",
                "read",
                PLANNERS,
                lambda c, e, k: e["mes.mapping"].browse(self.mappings[k].id).read(["mes_code"]),
            ),
            Row(
                "mes.mapping",
                "create",
                MANAGERS,
                lambda c, e, k: e["mes.mapping"].create(
                    {
                        "backend_id": self.backends[k].id,
                        "mapping_type": "product",
                        "mes_code": "NEW",
                        "product_id": self.housing.id,
                    }
                ),
            ),
            Row(
                "mes.mapping",
                "write",
                MANAGERS,
                lambda c, e, k: (
                    e["mes.mapping"].browse(self.mappings[k].id).write({"mes_code": "CHANGED"})
                ),
            ),
            Row(
                "mes.mapping",
                "unlink",
                MANAGERS,
                lambda c, e, k: e["mes.mapping"].browse(self.mappings[k].id).unlink(),
            ),
            # mes.error.cause: made and cleared by the interface only
            Row(
                "mes.error.cause",
                "read",
                PLANNERS,
                lambda c, e, k: e["mes.error.cause"].browse(self.causes[k].id).read(["name"]),
            ),
            Row(
                "mes.error.cause",
                "write",
                NOBODY,
                lambda c, e, k: (
                    e["mes.error.cause"].browse(self.causes[k].id).write({"state": "cleared"})
                ),
            ),
            Row(
                "mes.error.cause",
                "action_view_messages",
                PLANNERS,
                lambda c, e, k: (
                    e["mes.error.cause"].browse(self.causes[k].id).action_view_messages()
                ),
            ),
            Row(
                "mes.error.cause",
                "action_retry_messages",
                PLANNERS,
                lambda c, e, k: (
                    e["mes.error.cause"].browse(self.causes[k].id).action_retry_messages()
                ),
            ),
            # mrp.production
            Row("mrp.production", "action_mes_release", PLANNERS, release),
            Row(
                "mrp.production",
                "action_view_mes_messages",
                PLANNERS,
                lambda c, e, k: production(e, k).action_view_mes_messages(),
            ),
            Row("mrp.production", "action_fix_mes_stopper", PLANNERS, fix_stopper),
            Row(
                "mes.message",
                "action_fix",
                PLANNERS,
                lambda c, e, k: _message(c, e, k).action_fix(),
            ),
            Row(
                "mrp.production",
                "action_view_mes_stopper",
                PLANNERS,
                lambda c, e, k: production(e, k).action_view_mes_stopper(),
            ),
            # wizards
            Row(
                "mes.backend.key.wizard",
                "create",
                MANAGERS,
                lambda c, e, k: e["mes.backend.key.wizard"].create(
                    {"backend_id": self.backends[k].id}
                ),
            ),
            Row("mes.backend.key.wizard", "read another's", (), key_wizard_read),
            Row("mes.backend.key.wizard", "action_use", MANAGERS, key_wizard_use),
            Row(
                "mes.message.cancel.wizard",
                "action_confirm",
                PLANNERS,
                lambda c, e, k: (
                    e["mes.message.cancel.wizard"]
                    .create({"message_ids": [(6, 0, self.messages[k].ids)], "reason": "not ours"})
                    .action_confirm()
                ),
            ),
            Row(
                "mes.adopt.wizard",
                "action_confirm",
                MANAGERS,
                lambda c, e, k: (
                    e["mes.adopt.wizard"]
                    .create({"production_id": self.productions[k].id, "mes_order_id": "LEGACY-1"})
                    .action_confirm()
                ),
            ),
            # dashboards: by group; what they count is tested per company below
            Row(
                "mes.dashboard",
                "get_dashboard",
                PLANNERS,
                lambda c, e, k: e["mes.dashboard"].get_dashboard("planner"),
                own_company_only=False,
            ),
            Row(
                "mes.dashboard",
                "get_dashboard health",
                MANAGERS,
                lambda c, e, k: e["mes.dashboard"].get_dashboard("health"),
                own_company_only=False,
            ),
            # queue jobs of MES messages: MES managers read them
            Row(
                "queue.job",
                "related_action_mes_message",
                MANAGERS,
                lambda c, e, k: (
                    e["queue.job"].browse(self.messages[k]._job().id).related_action_mes_message()
                ),
            ),
        ]

    def test_every_group_and_company_against_every_model_and_method(self):
        self.assertMatrix(self._rows())

    def test_every_public_method_has_a_row(self):
        self.assertEveryPublicMethodCovered(self._rows())

    def test_dashboards_count_only_the_users_companies(self):
        self.assertEqual(
            self.env["mes.message"].search_count(
                [("state", "=", "error"), ("company_id", "=", self.companies["c2"].id)]
            ),
            1,
        )
        for key, other in (("c1", "c2"), ("c2", "c1")):
            board = self._env_of("planner", key)["mes.dashboard"].get_dashboard("planner")
            errors = next(t for t in board["sections"][0]["tiles"] if t["key"] == "errors")
            own = self.env["mes.message"].search_count(
                [("state", "=", "error"), ("company_id", "=", self.companies[key].id)]
            )
            self.assertEqual(errors["value"], own, "its own messages in error, not the other's")
            text = json.dumps(board, default=str)
            self.assertIn(self.backends[key].name, text)
            self.assertNotIn(self.backends[other].name, text)


class TestKeys(AccessCase):
    def test_key_of_another_company_cannot_be_generated_or_read(self):
        manager_c2 = self._env_of("manager", "c2")
        with self.assertRaises(AccessError):
            manager_c2["mes.backend"].browse(self.backend.id).action_generate_inbound_key()
        # The real MES's key still works, nothing new was made.
        self.assertTrue(self.backend._check_inbound_key(INBOUND_KEY))
        self.assertEqual(self.backend.inbound_key_count, 1)

    def test_a_new_key_exists_in_clear_only_in_the_answer(self):
        manager = self._env_of("manager", "c1")
        action = manager["mes.backend"].browse(self.backend.id).action_generate_inbound_key()
        key = action["context"]["mes_new_inbound_key"]
        self.assertEqual(len(key), 43)
        # The dialog shows it (from the action's context) ...
        wizard = manager["mes.backend.key.wizard"].with_context(**action["context"])
        wizard = wizard.browse(action["res_id"])
        self.assertEqual(wizard.key, key)
        # ... and no table holds it in clear: not the wizard, not the backend, not the keys.
        self.env.flush_all()
        for table in ("mes_backend_key_wizard", "mes_backend", "res_users_apikeys"):
            self.env.cr.execute(SQL("SELECT * FROM %s", SQL.identifier(table)))
            self.assertNotIn(key, repr(self.env.cr.fetchall()), table)
        # Not in use until the manager says the MES has it: closing the dialog loses
        # nothing, the key in use keeps working.
        self.assertFalse(self.backend._check_inbound_key(key))
        self.assertEqual(self.backend.inbound_key_count, 1)
        # Only the key this dialog made is put in use, once.
        forged = wizard.with_context(mes_new_inbound_key="a-key-of-my-own-choosing-0123456")
        with self.assertRaisesRegex(UserError, "not the key this dialog made"):
            forged.action_use()
        wizard.action_use()
        self.backend.invalidate_recordset(["inbound_key_count"])
        with self.assertRaisesRegex(UserError, "in use already"):
            wizard.action_use()
        # Over RPC a manager cannot bring a key of his own choosing.
        chosen = "a-key-of-my-own-choosing-0123456"
        with self.assertRaises(AccessError):
            manager["mes.backend.key.wizard"].create(
                {"backend_id": self.backend.id, "digest": key_digest(chosen)}
            )
        with self.assertRaises(AccessError):
            wizard.write({"used": False})
        self.assertFalse(self.backend._check_inbound_key(chosen))
        with self.assertRaisesRegex(UserError, "at least 32 characters"):
            self.backend._use_signing_secret("x")
        note = self.backend.message_ids[0]
        self.assertIn(f"New inbound key in use (…{key[-4:]})", note.body)
        self.assertNotIn(key, note.body)
        # Rotation: both keys work during the overlap, the old one no more once revoked.
        self.assertTrue(self.backend._check_inbound_key(key))
        self.assertTrue(self.backend._check_inbound_key(INBOUND_KEY))
        self.assertEqual(self.backend.inbound_key_count, 2)
        manager["mes.backend"].browse(self.backend.id).action_revoke_previous_inbound_keys()
        self.assertTrue(self.backend._check_inbound_key(key))
        self.assertFalse(self.backend._check_inbound_key(INBOUND_KEY))
        # The keys are Odoo API keys of the integration user, scoped to this backend only.
        apikey = self.env["res.users.apikeys"].search(
            [("scope", "=", f"mes_intake:{self.backend.id}")]
        )
        self.assertEqual(apikey.user_id, self.backend.user_id)
        self.assertFalse(self.backends["c2"]._check_inbound_key(key))

    def test_a_key_is_derived_once_and_refused_once_expired_or_its_user_archived(self):
        mes_backend._VERIFIED.clear()
        real = mes_backend.KEY_CRYPT_CONTEXT
        derived = []

        def verify(key, stored):
            derived.append(key)
            return real.verify(key, stored)

        with patch.object(mes_backend, "KEY_CRYPT_CONTEXT") as context:
            context.verify.side_effect = verify
            for _i in range(3):
                self.assertTrue(self.backend._check_inbound_key(INBOUND_KEY))
            self.assertEqual(derived, [INBOUND_KEY])
            # A wrong key pays the whole derivation every time.
            for _i in range(2):
                self.assertFalse(self.backend._check_inbound_key(INBOUND_KEY[:-1] + "x"))
            self.assertEqual(len(derived), 3)
            # Another backend's scope: not its key, whatever was checked before.
            self.assertFalse(self.backends["c2"]._check_inbound_key(INBOUND_KEY))
            # Expired: refused at once, although it was checked before.
            self.env.flush_all()
            self.env.cr.execute(
                "UPDATE res_users_apikeys SET expiration_date = now() - interval '1 minute'"
                " WHERE scope = %s",
                (f"mes_intake:{self.backend.id}",),
            )
            self.assertFalse(self.backend._check_inbound_key(INBOUND_KEY))
            self.env.cr.execute(
                "UPDATE res_users_apikeys SET expiration_date = NULL WHERE scope = %s",
                (f"mes_intake:{self.backend.id}",),
            )
            self.assertTrue(self.backend._check_inbound_key(INBOUND_KEY))
            # Its integration user archived: refused.
            self.backend.user_id.sudo().active = False
            self.env.flush_all()
            self.assertFalse(self.backend._check_inbound_key(INBOUND_KEY))
        self.assertEqual(len(derived), 3)

    def test_the_intake_finds_its_backend_by_code_and_key_in_one_query(self):
        backends = self.env["mes.backend"].sudo()
        self.env.flush_all()
        self.assertTrue(self.backend._check_inbound_key(INBOUND_KEY))  # derived once
        code = self.backend.code
        with self.assertQueryCount(1):
            found = backends._authenticate(code, INBOUND_KEY)
        self.assertEqual(found, self.backend)
        # Another backend's code with this key, a wrong key, no key: nobody.
        self.assertFalse(backends._authenticate(self.backends["c2"].code, INBOUND_KEY))
        self.assertFalse(backends._authenticate(self.backend.code, INBOUND_KEY[:-1] + "x"))
        self.assertFalse(backends._authenticate(self.backend.code, None))
        self.assertFalse(backends._authenticate(self.backend.code, "k" * 257))
        # An archived backend takes nothing, its key still valid for when it comes back.
        self.backend.sudo().active = False
        self.env.flush_all()
        self.assertFalse(backends._authenticate(self.backend.code, INBOUND_KEY))
        self.assertTrue(self.backend._check_inbound_key(INBOUND_KEY))
        self.backend.sudo().active = True
        self.env.flush_all()
        self.assertEqual(backends._authenticate(self.backend.code, INBOUND_KEY), self.backend)

    def test_outbound_key_is_written_not_read_back(self):
        manager = self._env_of("manager", "c1")
        backend = manager["mes.backend"].browse(self.backend.id)
        backend.write({"outbound_api_key_input": "rotated-outbound-key-9876"})
        backend.invalidate_recordset()
        self.assertEqual(backend.outbound_key_hint, "…9876")
        self.assertFalse(backend.outbound_api_key_input)
        with self.assertRaises(AccessError):
            backend.read(["outbound_api_key"])
        self.assertEqual(self.backend.sudo().outbound_api_key, "rotated-outbound-key-9876")
        # A new address needs the key typed again: changing the URL alone cannot send the
        # stored key to someone else's server.
        backend.write({"base_url": "http://127.0.0.1:9/elsewhere"})
        backend.invalidate_recordset()
        self.assertFalse(self.backend.sudo().outbound_api_key)
        self.assertFalse(backend.outbound_key_hint)
        backend.write(
            {"base_url": "http://127.0.0.1:9/new", "outbound_api_key_input": "typed-again-5555"}
        )
        self.assertEqual(self.backend.sudo().outbound_api_key, "typed-again-5555")
