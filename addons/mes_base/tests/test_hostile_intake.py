"""What a careless or hostile MES sends: every body is answered 2xx/4xx naming what is
wrong, each event of a batch is judged alone, and what was sent is kept as received."""

import json
import time
from unittest.mock import patch

from odoo.exceptions import UserError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from odoo.addons.queue_job.tests.common import trap_jobs

from mes_connector.signing import sign_headers

from ..exceptions import MesConcurrentDelivery
from ..models.ir_http import MAX_BODY
from ..models.mes_message_intake import QUEUE_SLICE
from .common import INBOUND_KEY, MesCase, recent


def _strict_json(response):
    """The answer as JSON, refusing NaN/Infinity (which are not JSON)."""

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(response.content, parse_constant=refuse)


@tagged("post_install", "-at_install")
class TestHostileIntake(MesCase, HttpCase):
    def _post(self, data, content_type="application/json", headers=None):
        all_headers = {"Authorization": f"Bearer {INBOUND_KEY}", **(headers or {})}
        if content_type:
            all_headers["Content-Type"] = content_type
        if isinstance(data, dict | list):
            data = json.dumps(data)
        # A POST whatever the body (url_open sends an empty body as a GET).
        return self.opener.post(
            f"{self.base_url()}/mes/api/v1/TEST/events", data=data, headers=all_headers, timeout=60
        )

    def _inbound(self):
        return self.env["mes.message"].search(
            [("backend_id", "=", self.backend.id), ("direction", "=", "inbound")]
        )

    def _good(self, production, event_id):
        return {
            "schema": "mes.event/1",
            "event_id": event_id,
            "event_type": "order_started",
            "order_ref": production.name,
            "sequence": 1,
            "occurred_at": recent(),
            "data": {},
        }

    def test_each_event_of_a_batch_is_judged_alone(self):
        production = self._production()
        good = [self._good(production, f"GOOD-{i}") for i in range(3)]
        operation = self._good(production, "BIG-OP")
        operation.update(event_type="operation_progress", data={"operation": 2**31})
        quantity = self._good(production, "HUGE-QTY")
        quantity.update(
            event_type="material_consumed",
            data={"product": "T-SCR", "quantity": "__1e400__", "uom": "Units"},
        )
        bad = [
            dict(self._good(production, "TYPE-OBJ"), event_type={}),
            dict(self._good(production, "TYPE-LIST"), event_type=[]),
            dict(self._good(production, "NUL-ID"), event_id="A\u0000B"),
            dict(self._good(production, "NUL-REF"), order_ref="MO\u0000/1"),
            dict(self._good(production, "SURROGATE"), order_ref="MO\ud800"),
            operation,
            dict(self._good(production, "YEAR-1"), occurred_at="0001-01-01T00:30:00+01:00"),
            dict(self._good(production, "YEAR-9999"), occurred_at="9999-12-31T23:30:00-01:00"),
            dict(self._good(production, "LONG-KEY"), **{"k" * 3000: 1}),
        ]
        events = [good[0], *bad[:5], good[1], *bad[5:], good[2], quantity]
        # 1e400: valid JSON syntax, a number no double holds.
        body = json.dumps({"events": events}).replace('"__1e400__"', "1e400")
        before = len(self._inbound())
        response = self._post(body)
        self.assertEqual(response.status_code, 200, response.text)
        results = _strict_json(response)["results"]
        self.assertEqual(len(results), 13)
        statuses = [r["status"] for r in results]
        self.assertEqual(
            statuses,
            ["accepted"]
            + ["rejected"] * 5
            + ["accepted"]
            + ["rejected"] * 4
            + ["accepted"]
            + ["rejected"],
        )
        fields = [{e["field"] for e in r.get("errors", [])} for r in results]
        self.assertIn("event_type", fields[1])
        self.assertIn("event_type", fields[2])
        self.assertIn("event_id", fields[3])
        self.assertIn("order_ref", fields[4])
        self.assertIn("order_ref", fields[5])
        self.assertIn("data.operation", fields[7])
        self.assertIn("occurred_at", fields[8])
        self.assertIn("occurred_at", fields[9])
        self.assertTrue(any(f.startswith("kkkk") and len(f) <= 200 for f in fields[10]))
        self.assertIn("data.quantity", fields[12])
        # Every event is stored, the good ones queued; what was sent is kept.
        stored = self._inbound()
        self.assertEqual(len(stored), before + 13)
        accepted = self.env["mes.message"].browse([results[i]["message_id"] for i in (0, 6, 11)])
        self.assertEqual(accepted.mapped("state"), ["received"] * 3)
        self.assertEqual(accepted.mapped(lambda m: m._job().state), ["pending"] * 3)
        nul_ref = self.env["mes.message"].browse(results[4]["message_id"])
        self.assertEqual(nul_ref.state, "error")
        self.assertEqual(json.loads(nul_ref.payload)["order_ref"], "MO\u0000/1")
        long_key = self.env["mes.message"].browse(results[10]["message_id"])
        self.assertLessEqual(len(long_key.error_cause), 200)
        # The same batch again: the good ones are duplicates, nothing is stored twice.
        again = _strict_json(self._post(body))["results"]
        self.assertEqual([again[i]["status"] for i in (0, 6, 11)], ["duplicate"] * 3)

    def test_bodies_that_are_not_json_are_answered_and_kept_byte_for_byte(self):
        cases = [
            ("nul", b'{"event_id": "X"\x00}', 400, "application/json"),
            ("utf16", json.dumps({"a": 1}).encode("utf-16"), 400, "application/json"),
            ("deep", b"[" * 100_000 + b"]" * 100_000, 400, "application/json"),
            ("nan", b'{"events": [{"q": NaN}]}', 400, "application/json"),
            ("infinity", b'{"q": Infinity}', 400, "application/json"),
            ("empty", b"", 400, "application/json"),
            ("latin1", '{"order_ref": "Gro\u00dfe"}'.encode("latin-1"), 400, "application/json"),
            ("form", b"event_id=F-1&event_type=order_started", 415, None),
            ("text", b"hello \xff\x00 world", 415, "text/plain"),
        ]
        for name, body, status, content_type in cases:
            with self.subTest(name):
                headers = {}
                if content_type is None:
                    headers["Content-Type"] = "application/x-www-form-urlencoded"
                response = self._post(body, content_type=content_type, headers=headers)
                self.assertEqual(response.status_code, status, response.text[:300])
                answer = _strict_json(response)
                self.assertEqual(answer["status"], "rejected")
                self.assertTrue(answer["errors"][0]["reason"])
                message = self.env["mes.message"].browse(answer["message_id"])
                self.assertEqual(message.state, "error")
                kept = message.payload_raw or message.payload.encode()
                if message.payload_raw:
                    kept = message.with_context(bin_size=False).payload_raw
                self.assertEqual(kept, body, "kept exactly as received")
                # Stored by the ORM (raw bytes) or in SQL: the MES's integration user.
                self.assertEqual(message.create_uid, self.backend.user_id)

    def test_multipart_body_is_refused_and_kept(self):
        response = self.url_open(
            "/mes/api/v1/TEST/events",
            files={"file": ("event.json", b'{"event_id": "M-1"}', "application/json")},
            headers={"Authorization": f"Bearer {INBOUND_KEY}"},
        )
        self.assertEqual(response.status_code, 415, response.text)
        message = self.env["mes.message"].browse(_strict_json(response)["message_id"])
        self.assertIn(b'{"event_id": "M-1"}', message.payload.encode())

    def test_byte_order_mark_is_ignored_and_the_event_processed(self):
        production = self._production()
        production.action_confirm()
        body = "\ufeff".encode() + json.dumps(self._good(production, "BOM-1")).encode()
        response = self._post(body)
        self.assertEqual(response.status_code, 202, response.text)
        message = self.env["mes.message"].browse(response.json()["message_id"])
        self.assertEqual(message.with_context(bin_size=False).payload_raw, body)
        self.assertFalse(message.payload.startswith("\ufeff"))
        message._process()
        self.assertEqual(message.state, "processed", message.error_text)

    def test_chunked_bodies_are_bounded_too(self):
        production = self._production()
        before = len(self._inbound())

        def chunks(total):
            chunk = b" " * 65536
            sent = 0
            yield b'{"events": ['
            while sent < total:
                yield chunk
                sent += len(chunk)
            yield b"]}"

        response = self._post(chunks(MAX_BODY + 1_000_000))
        self.assertEqual(response.status_code, 413, response.text[:200])
        self.assertEqual(len(self._inbound()), before, "nothing stored")
        event = json.dumps(self._good(production, "CHUNKED-1")).encode()
        response = self._post(iter([event[:10], event[10:]]))
        self.assertEqual(response.status_code, 202, response.text)
        self.assertEqual(len(self._inbound()), before + 1)

    def test_a_cancelled_event_stays_cancelled_when_the_mes_resends_it(self):
        production = self._production()
        event = self._good(production, "CANCELLED-1")
        event["sequence"] = -1
        answer = self._post(event).json()
        self.assertEqual(answer["status"], "rejected")
        message = self.env["mes.message"].browse(answer["message_id"])
        message.action_cancel("wrong order, the planner handles it by hand")
        event["sequence"] = 1
        response = self._post(event)
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(
            (response.json()["status"], response.json()["state"]), ("duplicate", "cancelled")
        )
        self.assertEqual(message.state, "cancelled")
        self.assertEqual(json.loads(message.payload)["sequence"], -1)

    def test_signed_requests(self):
        self.backend.write({"signature_required": True})
        action = self.backend.action_generate_signing_secret()
        secret = action["context"]["mes_new_signing_secret"]
        self.assertFalse(self.backend.sudo().signing_secret)  # not in use before it is said
        wizard = self.env["mes.backend.key.wizard"].with_context(**action["context"])
        wizard.browse(action["res_id"]).action_use()
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT signing_secret FROM mes_backend WHERE id = %s", [self.backend.id]
        )
        self.assertEqual(self.env.cr.fetchone()[0], secret)
        production = self._production()
        before = len(self._inbound())
        body = json.dumps(self._good(production, "SIGNED-1")).encode()
        unsigned = self._post(body)
        self.assertEqual(unsigned.status_code, 401)
        self.assertIn("X-MES-Signature", unsigned.json()["error"])
        old = self._post(body, headers=sign_headers(secret, body, now=time.time() - 3600))
        self.assertEqual(old.status_code, 401)
        self.assertIn("replayed", old.json()["error"])
        tampered = body.replace(b"SIGNED-1", b"SIGNED-2")
        forged = self._post(tampered, headers=sign_headers(secret, body))
        self.assertEqual(forged.status_code, 401)
        wrong = self._post(body, headers=sign_headers("not-the-secret", body))
        self.assertEqual(wrong.status_code, 401)
        self.assertEqual(len(self._inbound()), before, "nothing stored for refused requests")
        signed = self._post(body, headers=sign_headers(secret, body))
        self.assertEqual(signed.status_code, 202, signed.text)
        replayed = self._post(body, headers=sign_headers(secret, body))
        self.assertEqual(replayed.json()["status"], "duplicate")
        self.assertEqual(len(self._inbound()), before + 1)

    def test_hostile_b2mml_is_answered_and_kept(self):
        production = self._production()
        namespace = "http://www.mesa.org/xml/B2MML-V0600"

        def document(segment_id, end):
            return (
                f'<?xml version="1.0" encoding="UTF-8"?><ProductionPerformance xmlns="{namespace}">'
                f"<ID>PP-{segment_id}</ID><ProductionResponse><ID>R-1</ID>"
                f"<ProductionRequestID>{production.name}</ProductionRequestID>"
                f"<EndTime>{end}</EndTime>"
                f"<SegmentResponse><ID>S1</ID><ProcessSegmentID>{segment_id}</ProcessSegmentID>"
                f"<ActualEndTime>{end}</ActualEndTime><SegmentState>Completed</SegmentState>"
                "</SegmentResponse></ProductionResponse></ProductionPerformance>"
            )

        for name, body in [
            ("segment", document("123456789012345678", recent())),
            ("year 1", document("10", "0001-01-01T00:30:00+01:00")),
            ("year 9999", document("10", "9999-12-31T23:30:00-01:00")),
            ("truncated", document("10", recent())[:-40]),
        ]:
            with self.subTest(name):
                response = self._post(body, content_type="application/xml")
                self.assertEqual(response.status_code, 422, response.text[:300])
                answer = _strict_json(response)
                self.assertEqual(answer["status"], "rejected")
                message = self.env["mes.message"].browse(answer["message_id"])
                self.assertEqual((message.state, message.payload), ("error", body))


class TestLargeDocument(MesCase):
    def _document(self, production, count):
        namespace = "http://www.mesa.org/xml/B2MML-V0600"
        material = (
            "<MaterialActual><MaterialDefinitionID>T-SCR</MaterialDefinitionID>"
            "<MaterialUse>Consumed</MaterialUse><Quantity><QuantityString>1</QuantityString>"
            "<UnitOfMeasure>Units</UnitOfMeasure></Quantity></MaterialActual>"
        )
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><ProductionPerformance xmlns="{namespace}">'
            f"<ID>BIG-{production.id}</ID><ProductionResponse><ID>R-1</ID>"
            f"<ProductionRequestID>{production.name}</ProductionRequestID>"
            f"<EndTime>{recent()}</EndTime><SegmentResponse><ID>S1</ID>"
            "<ProcessSegmentID>10</ProcessSegmentID>"
            + material * count
            + "</SegmentResponse></ProductionResponse></ProductionPerformance>"
        ).encode()

    def test_a_large_document_is_stored_at_once_and_queued_in_slices(self):
        production = self._production()
        # 1,001 consumptions in operation 10 (a segment that says nothing of the
        # operation itself reports none): 1,001 events.
        materials, count = 2 * QUEUE_SLICE + 1, 2 * QUEUE_SLICE + 1
        body = self._document(production, materials)
        with trap_jobs() as trap:
            answer = self.env["mes.message"]._intake_b2mml(self.backend, body)
            self.assertEqual(answer["status"], "accepted")
            self.assertEqual(len(answer["results"]), count)
            self.assertEqual({r["status"] for r in answer["results"]}, {"accepted"})
            document = self.env["mes.message"].browse(answer["message_id"])
            events = document.child_ids
            self.assertEqual(len(events), count)
            self.assertEqual(sorted(events.mapped("sequence")), list(range(1, count + 1)))
            # Queued by the document's job, in slices.
            self.assertEqual([j.method_name for j in trap.enqueued_jobs], ["_queue_events"])
            results = []
            while slices := [j for j in trap.enqueued_jobs if j.method_name == "_queue_events"]:
                trap.enqueued_jobs.remove(slices[0])
                results.append(slices[0].perform())
            self.assertEqual(
                results,
                [f"{QUEUE_SLICE} events queued", f"{QUEUE_SLICE} events queued", "1 events queued"],
            )
            # All of one order: one lane, one job that applies them in order.
            lanes = [j for j in trap.enqueued_jobs if j.method_name == "_run_lane"]
            self.assertEqual([j.args for j in lanes], [(events[0]._lane_key(),)])
        # The same document again: a duplicate, nothing more stored.
        again = self.env["mes.message"]._intake_b2mml(self.backend, body)
        self.assertEqual(again["status"], "duplicate")
        self.assertEqual(len(document.child_ids), count)


class TestRefusedStaysRefused(MesCase):
    def _store(self, event):
        with trap_jobs():
            return self.env["mes.message"]._intake(self.backend, json.dumps(event), event)

    def test_an_event_the_intake_refused_is_not_applied_by_a_retry(self):
        production = self._production()
        production.action_confirm()
        answer = self._store(self._event(production, "NEG-1", -5))
        message = self.env["mes.message"].browse(answer["message_id"])
        self.assertEqual((answer["status"], message.error_code), ("rejected", "invalid_message"))
        planner = new_test_user(self.env, "retry_planner", groups="mes_base.group_mes_user")
        with self.assertRaisesRegex(
            UserError, r"(?s)sent these messages invalid.*data.quantity: -5"
        ):
            message.with_user(planner).action_retry()
        # Even a job that runs it anyway does not post it.
        message._process()
        self.assertEqual((message.state, message.error_code), ("error", "invalid_message"))
        self.assertEqual(production.state, "confirmed")
        # Corrected by an MES manager, it is retried and posted.
        manager = new_test_user(self.env, "retry_manager", groups="mes_base.group_mes_manager")
        corrected = json.dumps(self._event(production, "NEG-1", 5))
        message.with_user(manager).write({"payload": corrected})
        with trap_jobs():
            message.with_user(planner).action_retry()
        self.assertEqual(message.state, "processed", message.error_text)
        self.assertIn('"quantity": -5', message.payload_original)

    def test_refused_then_corrected_in_one_batch_is_stored_once_as_corrected(self):
        production = self._production()
        refused = self._event(production, "TWICE-1", -1)
        corrected = self._event(production, "TWICE-1", 5)
        with trap_jobs():
            answers = self.env["mes.message"]._intake_batch(
                self.backend, [refused, corrected, corrected]
            )
        self.assertEqual([a["status"] for a in answers], ["rejected", "accepted", "duplicate"])
        self.assertEqual(len({a["message_id"] for a in answers}), 1)
        message = self.env["mes.message"].browse(answers[0]["message_id"])
        self.assertEqual((message.state, json.loads(message.payload)), ("received", corrected))
        self.assertEqual(json.loads(message.payload_original), refused)

    def test_an_order_whose_mes_numbering_is_exhausted_refuses_documents_clearly(self):
        production = self._production()
        last = dict(self._event(production, "LAST-1", 1), event_type="order_started")
        last.update(sequence=2147483647, data={})
        self.assertEqual(self._store(last)["status"], "accepted")
        document = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ProductionPerformance xmlns="http://www.mesa.org/xml/B2MML-V0600">'
            f"<ID>FULL-1</ID><ProductionResponse><ID>R-1</ID>"
            f"<ProductionRequestID>{production.name}</ProductionRequestID>"
            f"<EndTime>{recent()}</EndTime><SegmentResponse><ID>S1</ID>"
            "<ProcessSegmentID>10</ProcessSegmentID><SegmentState>Running</SegmentState>"
            "</SegmentResponse></ProductionResponse></ProductionPerformance>"
        ).encode()
        answer = self.env["mes.message"]._intake_b2mml(self.backend, document)
        self.assertEqual(answer["status"], "rejected")
        self.assertEqual(answer["errors"][0]["value"], production.name)
        stored = self.env["mes.message"].browse(answer["message_id"])
        self.assertEqual((stored.state, stored.error_code), ("error", "sequence_exhausted"))
        self.assertFalse(stored.child_ids)

    def test_a_concurrent_delivery_of_the_same_event_is_asked_again(self):
        production = self._production()
        event = self._event(production, "RACE-1", 5)
        messages = self.env["mes.message"]
        self.assertEqual(self._store(event)["status"], "accepted")
        before = messages.search_count([])

        def not_found(*_args, **_kwargs):
            # What the duplicate search sees while another transaction stores the same
            # id: nothing (the insert then meets that transaction's row).
            return messages.browse()

        with patch.object(type(messages), "_find_inbound", not_found):
            with self.assertRaises(MesConcurrentDelivery):
                self._store(event)
            with self.assertRaises(MesConcurrentDelivery):
                messages._intake_batch(self.backend, [dict(event, event_id="RACE-2"), event])
        self.assertEqual(messages.search_count([]), before)
        self.assertFalse(messages.search([("external_id", "=", "RACE-2")]))


@tagged("post_install", "-at_install")
class TestConcurrentAnswer(MesCase, HttpCase):
    def test_the_mes_is_told_to_send_again_and_nothing_is_kept(self):
        messages = self.env["mes.message"]
        before = messages.search_count([])

        def committed_elsewhere(*_args, **_kwargs):
            raise MesConcurrentDelivery("another request stored one of these events")

        event = {
            "schema": "mes.event/1",
            "event_id": "RACE-HTTP",
            "event_type": "order_started",
            "order_ref": "WH/MO/1",
            "occurred_at": recent(),
            "data": {},
        }
        with patch.object(type(messages), "_intake_prepared", committed_elsewhere):
            response = self.url_open(
                "/mes/api/v1/TEST/events",
                data=json.dumps({"events": [event]}),
                headers={
                    "Authorization": f"Bearer {INBOUND_KEY}",
                    "Content-Type": "application/json",
                },
            )
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.headers["Retry-After"], "1")
        self.assertIn("send again", _strict_json(response)["error"])
        self.assertEqual(messages.search_count([]), before)
        # Sent again, it is stored.
        response = self.url_open(
            "/mes/api/v1/TEST/events",
            data=json.dumps(event),
            headers={"Authorization": f"Bearer {INBOUND_KEY}", "Content-Type": "application/json"},
        )
        self.assertEqual(response.status_code, 202, response.text)

    def test_a_request_odoo_runs_again_after_a_deadlock_keeps_its_body(self):
        # Two overlapping batches deadlocked (or conflicted) in PostgreSQL: Odoo rolls the
        # request back and runs it again. The second run reads the same body, not an
        # empty stream, and stores every event once.
        messages = self.env["mes.message"]
        original = type(messages)._intake_prepared
        events = [
            {
                "schema": "mes.event/1",
                "event_id": f"RERUN-{kind}-{number}",
                "event_type": "order_started",
                "order_ref": "WH/MO/RERUN",
                "sequence": number,
                "occurred_at": recent(),
                "data": {},
            }
            for kind in ("deadlock", "serialization")
            for number in (1, 2)
        ]
        # SQLSTATE of a deadlock and of a serialization failure.
        for kind, batch in (("40P01", events[:2]), ("40001", events[2:])):
            runs = []

            def conflict_once(self_, *args, kind=kind, runs=runs, **kwargs):
                runs.append(args)
                if len(runs) == 1:
                    # The error as PostgreSQL raises it (with its SQLSTATE).
                    with mute_logger("odoo.sql_db"):
                        self_.env.cr.execute(
                            "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = %s; END $$",
                            (kind,),
                        )
                return original(self_, *args, **kwargs)

            with (
                self.subTest(sqlstate=kind),
                patch.object(type(messages), "_intake_prepared", conflict_once),
            ):
                response = self.url_open(
                    "/mes/api/v1/TEST/events",
                    data=json.dumps({"events": batch}),
                    headers={
                        "Authorization": f"Bearer {INBOUND_KEY}",
                        "Content-Type": "application/json",
                    },
                )
                self.assertEqual(response.status_code, 200, response.text)
                self.assertEqual(len(runs), 2, "Odoo ran the request a second time")
                answers = _strict_json(response)["results"]
                self.assertEqual([a["status"] for a in answers], ["accepted", "accepted"])
                stored = messages.search([("external_id", "in", [e["event_id"] for e in batch])])
                self.assertEqual(
                    sorted(stored.mapped("external_id")), [e["event_id"] for e in batch]
                )
                self.assertFalse(messages.search_count([("error_code", "=", "invalid_json")]))
