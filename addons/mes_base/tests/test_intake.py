import json

from lxml import etree

from odoo.exceptions import UserError, ValidationError
from odoo.tests import HttpCase, TransactionCase, tagged

from .common import INBOUND_KEY, MesCase, at, odoo_at


@tagged("post_install", "-at_install")
class TestIntake(MesCase, HttpCase):
    def _post(self, body, key=INBOUND_KEY, content_type="application/json", code="TEST"):
        headers = {"Content-Type": content_type}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        return self.url_open(f"/mes/api/v1/{code}/events", data=data, headers=headers)

    def _messages(self):
        return self.env["mes.message"].search(
            [("backend_id", "=", self.backend.id), ("direction", "=", "inbound")]
        )

    def _job_count(self):
        return self.env["queue.job"].search_count([("model_name", "=", "mes.message")])

    def test_event_is_stored_exactly_and_processing_queued(self):
        production = self._production()
        body = json.dumps(self._event(production, "IN-1"), indent=1)
        jobs_before = self._job_count()
        response = self._post(body)
        self.assertEqual(response.status_code, 202, response.text)
        answer = response.json()
        self.assertEqual(answer["status"], "accepted")
        message = self.env["mes.message"].browse(answer["message_id"])
        self.assertEqual(message.payload, body)
        self.assertEqual(message.external_id, "IN-1")
        self.assertEqual(message.state, "received")
        self.assertEqual(message.order_ref, production.name)
        self.assertEqual(str(message.occurred_at), odoo_at(0, "07:30:00"))
        self.assertEqual(self._job_count(), jobs_before + 1)

    def test_duplicate_delivery_is_one_row(self):
        production = self._production()
        body = json.dumps(self._event(production, "IN-2"))
        statuses = [self._post(body).json()["status"] for _i in range(5)]
        self.assertEqual(statuses, ["accepted"] + ["duplicate"] * 4)
        self.assertEqual(len(self._messages().filtered(lambda m: m.external_id == "IN-2")), 1)

    def test_invalid_event_is_rejected_naming_field_and_still_stored(self):
        production = self._production()
        event = self._event(production, "IN-3")
        del event["data"]["uom"]
        event["data"]["quantity"] = -2
        response = self._post(event)
        self.assertEqual(response.status_code, 422)
        answer = response.json()
        self.assertEqual(answer["status"], "rejected")
        fields = {e["field"]: e for e in answer["errors"]}
        self.assertEqual(set(fields), {"data.uom", "data.quantity"})
        self.assertEqual(fields["data.quantity"]["value"], -2)
        message = self.env["mes.message"].browse(answer["message_id"])
        self.assertEqual(message.state, "error")
        self.assertEqual(message.error_code, "invalid_message")
        self.assertEqual(message.error_cause, "invalid_message: data.quantity, data.uom")
        self.assertIn("data.quantity: -2 must be greater than 0", message.error_text)
        self.assertEqual(json.loads(message.payload), event)

    def test_not_json_is_rejected_and_stored(self):
        response = self._post(b"{not json")
        self.assertEqual(response.status_code, 400)
        message = self.env["mes.message"].browse(response.json()["message_id"])
        self.assertEqual(message.payload, "{not json")
        self.assertEqual(message.error_code, "invalid_json")

    def test_wrong_or_missing_key_is_401_and_nothing_stored(self):
        production = self._production()
        before = self._messages()
        for key in (None, "wrong-key-wrong-key-wrong", INBOUND_KEY[:-1]):
            response = self._post(self._event(production, "IN-4"), key=key)
            self.assertEqual(response.status_code, 401)
        response = self._post(self._event(production, "IN-4"), code="NOPE")
        self.assertEqual(response.status_code, 401)
        self.assertEqual(self._messages(), before)

    def test_an_archived_backend_refuses_its_own_key(self):
        production = self._production()
        self.backend.active = False
        response = self._post(self._event(production, "IN-ARCH"))
        self.assertEqual(response.status_code, 401)
        self.backend.active = True
        response = self._post(self._event(production, "IN-ARCH"))
        self.assertEqual(response.status_code, 202, response.text)

    def test_what_the_mes_sent_is_stored_in_every_column_as_sent(self):
        production = self._production()
        event = self._event(production, "IN-COLS")
        event["data"]["lot"] = "LOT-é😀\\u0000\"'"
        event["data"]["quantity"] = 0.1
        event["mes_order_id"] = "MES-€-7"
        bad = dict(self._event(production, "IN-COLS-BAD"), sequence=-1)
        results = self._post({"events": [event, bad]}).json()["results"]
        message = self.env["mes.message"].browse(results[0]["message_id"])
        self.assertEqual(message.reported_lot, "LOT-é😀\\u0000\"'")
        self.assertEqual(message.reported_quantity, 0.1)
        self.assertEqual(message.mes_order_id, "MES-€-7")
        self.assertEqual(message.sequence, event["sequence"])
        self.assertEqual(str(message.occurred_at), odoo_at(0, "07:30:00"))
        self.assertEqual(json.loads(message.payload), event)
        self.assertEqual(message.company_id, self.backend.company_id)
        self.assertEqual(message.create_uid, self.backend.user_id)
        self.assertFalse(message.error_cause)
        refused = self.env["mes.message"].browse(results[1]["message_id"])
        self.assertEqual(
            (refused.state, refused.cause_code, refused.cause_value, refused.error_cause),
            ("error", "invalid_message", "sequence", "invalid_message: sequence"),
        )
        self.assertFalse(refused.sequence)
        # Whole numbers written as floats are integers to JSON Schema: stored as such.
        operation = dict(
            self._event(production, "IN-COLS-FLOAT"),
            event_type="operation_progress",
            sequence=2.0,
            data={"operation": 10.0, "good_quantity": 1, "uom": "Units"},
        )
        [result] = self._post({"events": [operation]}).json()["results"]
        self.assertEqual(result["status"], "accepted", result)
        stored = self.env["mes.message"].browse(result["message_id"])
        self.assertEqual((stored.sequence, stored.reported_operation), (2, 10))

    def test_batch_answers_per_event(self):
        production = self._production()
        good = self._event(production, "IN-5")
        bad = dict(self._event(production, "IN-6"), event_type="teleported")
        response = self._post({"events": [good, bad, good]})
        self.assertEqual(response.status_code, 200)
        results = response.json()["results"]
        self.assertEqual([r["status"] for r in results], ["accepted", "rejected", "duplicate"])
        self.assertEqual(results[1]["errors"][0]["field"], "event_type")
        self.assertEqual(results[1]["errors"][0]["value"], "teleported")

    def test_openapi_document_is_served(self):
        document = self.url_open("/mes/api/v1/openapi.json").json()
        self.assertIn("/{backend}/events", document["paths"])
        responses = document["paths"]["/{backend}/events"]["post"]["responses"]
        self.assertTrue({"200", "202", "400", "401", "413", "415", "422"} <= set(responses))
        schema = self.url_open("/mes/api/v1/schemas/event.v1.json").json()
        self.assertEqual(schema["properties"]["schema"], {"const": "mes.event/1"})
        self.assertEqual(self.url_open("/mes/api/v1/schemas/order.v1.json").status_code, 404)

    def _performance(self, production, namespace="http://www.wbf.org/xml/B2MML-V0401"):
        def material(product, use, quantity, lot=""):
            lot = f"<MaterialLotID>{lot}</MaterialLotID>" if lot else ""
            return (
                f"<MaterialActual><MaterialDefinitionID>{product}</MaterialDefinitionID>{lot}"
                f"<MaterialUse>{use}</MaterialUse><Quantity><QuantityString>{quantity}"
                "</QuantityString><UnitOfMeasure>Units</UnitOfMeasure></Quantity></MaterialActual>"
            )

        return (
            f'<?xml version="1.0" encoding="UTF-8"?><ProductionPerformance xmlns="{namespace}">'
            f"<ID>PP-{production.id}</ID><PublishedDate>{at(0, '12:00:00')}</PublishedDate>"
            f"<ProductionResponse><ID>M-{production.id}</ID>"
            f"<ProductionRequestID>{production.name}</ProductionRequestID>"
            f"<EndTime>{at(0, '11:00:00')}</EndTime>"
            "<SegmentResponse><ID>S10</ID><ProcessSegmentID>10</ProcessSegmentID>"
            f"<ActualEndTime>{at(0, '10:00:00')}</ActualEndTime>"
            + material("T-HOUS", "Consumed", 2, "LOT-A")
            + material("T-SCR", "Consumed", 8)
            + material("T-PUMP", "Produced", 2)
            + "<SegmentState>Completed</SegmentState></SegmentResponse>"
            "<ResponseState>Completed</ResponseState></ProductionResponse></ProductionPerformance>"
        )

    def test_b2mml_performance_is_kept_whole_and_its_events_post(self):
        self.backend.consumption_owner = "mes"
        production = self._production(qty=2)
        production.action_confirm()
        body = self._performance(production)
        response = self._post(body, content_type="application/xml")
        self.assertEqual(response.status_code, 200, response.text)
        answer = response.json()
        self.assertEqual(answer["status"], "accepted")
        document = self.env["mes.message"].browse(answer["message_id"])
        self.assertEqual((document.payload_format, document.payload), ("xml", body))
        events = document.child_ids.sorted("sequence")
        self.assertEqual(
            events.mapped("message_type"),
            [
                "material_consumed",
                "material_consumed",
                "output_produced",
                "operation_completed",
                "order_completed",
            ],
        )
        for event in events:
            event._process()
            self.assertEqual(event.state, "processed", event.error_text)
        self.assertEqual(production.state, "done")
        housing = production.move_raw_ids.filtered(lambda m: m.product_id == self.housing)
        self.assertEqual(housing.move_line_ids.lot_id, self.lot_a)
        again = self._post(body, content_type="text/xml").json()
        self.assertEqual(again["status"], "duplicate")

    def test_operators_in_b2mml_are_personnel_actuals_with_their_time(self):
        self.backend.consumption_owner = "mes"
        anna = self.env["hr.employee"].create({"name": "Anna (b2mml)", "barcode": "B7001"})
        production = self._production(qty=2)
        production.action_confirm()
        body = self._performance(production).replace(
            "<SegmentState>",
            "<PersonnelActual><PersonID>B7001</PersonID><Quantity><QuantityString>0.75"
            "</QuantityString><UnitOfMeasure>h</UnitOfMeasure></Quantity></PersonnelActual>"
            "<SegmentState>",
            1,
        )
        answer = self._post(body, content_type="application/xml").json()
        document = self.env["mes.message"].browse(answer["message_id"])
        for event in document.child_ids.sorted("sequence"):
            event._process()
            self.assertEqual(event.state, "processed", event.error_text)
        labor = self.env["mes.labor"].search([("production_id", "=", production.id)])
        self.assertEqual([(line.employee_id, line.minutes) for line in labor], [(anna, 45.0)])

    def _wrapped(self, body, verb, confirmation=None, bod_id="BOD-1"):
        """A bare performance in a ``<verb>ProductionPerformance`` BOD, as MES send it."""
        namespace = "http://www.wbf.org/xml/B2MML-V0401"
        noun = body.split("?>", 1)[1].replace(f' xmlns="{namespace}"', "")
        code = f"<ConfirmationCode>{confirmation}</ConfirmationCode>" if confirmation else ""
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><{verb}ProductionPerformance '
            f'xmlns="{namespace}" releaseID="1.0"><ApplicationArea><Sender>'
            f"<LogicalID>MES-PLANT-7</LogicalID>{code}</Sender>"
            f"<CreationDateTime>{at(0, '12:05:00')}</CreationDateTime><BODID>{bod_id}</BODID>"
            f"</ApplicationArea><DataArea><{verb}/>{noun}</DataArea></{verb}ProductionPerformance>"
        )

    def test_a_process_transaction_is_posted_and_acknowledged_in_b2mml(self):
        self.backend.write({"consumption_owner": "mes", "b2mml_logical_id": "ODOO-PLANT-7"})
        production = self._production(qty=2)
        production.action_confirm()
        body = self._wrapped(self._performance(production), "Process")
        response = self._post(body, content_type="application/xml")
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.headers["Content-Type"], "application/xml; charset=utf-8")
        answer = etree.fromstring(response.content)
        ns = {"b": "http://www.wbf.org/xml/B2MML-V0401"}
        self.assertEqual(etree.QName(answer).localname, "AcknowledgeProductionPerformance")
        self.assertEqual(
            answer.findtext("b:ApplicationArea/b:Sender/b:LogicalID", namespaces=ns),
            "ODOO-PLANT-7",
        )
        self.assertEqual(
            answer.findtext(".//b:OriginalApplicationArea/b:BODID", namespaces=ns), "BOD-1"
        )
        self.assertEqual(answer.find(".//b:ResponseExpression", ns).get("actionCode"), "Accepted")
        self.assertEqual(
            answer.findtext("b:DataArea/b:ProductionPerformance/b:ID", namespaces=ns),
            f"PP-{production.id}",
        )
        document = self.env["mes.message"].browse(int(response.headers["X-MES-Message-Id"]))
        self.assertEqual(document.payload, body)
        for event in document.child_ids.sorted("sequence"):
            event._process()
            self.assertEqual(event.state, "processed", event.error_text)
        self.assertEqual(production.state, "done")
        # The MES sends it again in a new envelope: nothing posts twice, and it is told so.
        again = self._post(
            self._wrapped(self._performance(production), "Process", bod_id="BOD-2"),
            content_type="application/xml",
        )
        self.assertEqual(again.status_code, 200)
        self.assertEqual(
            etree.fromstring(again.content).find(".//b:ResponseExpression", ns).get("actionCode"),
            "Accepted",
        )
        resent = self.env["mes.message"].browse(int(again.headers["X-MES-Message-Id"]))
        self.assertNotEqual(resent, document)  # kept as it came...
        self.assertFalse(resent.child_ids)  # ...but its events were all received before
        self.assertEqual(
            self.env["mes.message"].search_count(
                [("production_id", "=", production.id), ("message_type", "!=", "order_export")]
            ),
            5,
        )

    def test_a_sync_is_confirmed_when_asked_and_refusals_say_why(self):
        production = self._production(qty=2)
        production.action_confirm()
        quiet = self._post(
            self._wrapped(self._performance(production), "Sync"), content_type="application/xml"
        )
        self.assertEqual(quiet.json()["status"], "accepted")  # no confirmation asked: JSON
        broken = self._performance(production).replace(
            "<QuantityString>8</QuantityString>", "<QuantityString>eight</QuantityString>"
        )
        refused = self._post(
            self._wrapped(broken, "Sync", confirmation="OnError", bod_id="BOD-9"),
            content_type="application/xml",
        )
        self.assertEqual(refused.status_code, 422)
        answer = etree.fromstring(refused.content)
        ns = {"b": "http://www.wbf.org/xml/B2MML-V0401"}
        self.assertEqual(etree.QName(answer).localname, "ConfirmBOD")
        self.assertEqual(answer.find(".//b:ResponseExpression", ns).get("actionCode"), "Rejected")
        notes = [note.text for note in answer.findall("b:DataArea/b:BOD/b:Note", ns)]
        self.assertEqual(len(notes), 1)
        self.assertIn("Quantity/QuantityString", notes[0])
        self.assertIn('"eight" is not a number', notes[0])
        kept = self.env["mes.message"].browse(int(refused.headers["X-MES-Message-Id"]))
        self.assertEqual((kept.state, kept.error_code), ("error", "invalid_b2mml"))

    def _vendor_sync(self, mes_order_id, document_id):
        """A V0401 Sync as a vendor's MES sends it: its response names the MES's own order
        only (no ProductionRequestID), times in the envelope and the segment."""
        namespace = "http://www.wbf.org/xml/B2MML-V0401"
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><SyncProductionPerformance '
            f'xmlns="{namespace}" releaseID="1.0"><ApplicationArea><Sender>'
            "<LogicalID>MES-PLANT-7</LogicalID></Sender>"
            f"<CreationDateTime>{at(0, '12:05:00')}</CreationDateTime><BODID>B-{document_id}"
            "</BODID></ApplicationArea><DataArea><Sync/><ProductionPerformance>"
            f"<ID>{document_id}</ID><ProductionResponse><ID>{mes_order_id}</ID>"
            "<SegmentResponse><ProcessSegmentID>10</ProcessSegmentID>"
            f"<ActualStartTime>{at(0, '09:00:00')}</ActualStartTime>"
            f"<ActualEndTime>{at(0, '10:00:00')}</ActualEndTime>"
            "<MaterialActual><MaterialDefinitionID>T-SCR</MaterialDefinitionID>"
            "<MaterialUse>Consumed</MaterialUse><Quantity><QuantityString>8</QuantityString>"
            "<DataType>float</DataType><UnitOfMeasure>UNITS</UnitOfMeasure></Quantity>"
            "</MaterialActual></SegmentResponse></ProductionResponse></ProductionPerformance>"
            "</DataArea></SyncProductionPerformance>"
        )

    def test_reports_naming_the_mes_order_id_post_on_it_or_wait_until_it_is_adopted(self):
        # Cutover: the MES runs orders Odoo did not send it (a planner releases new ones).
        self.backend.write(
            {"consumption_owner": "mes", "b2mml_order_key": "response", "export_trigger": "manual"}
        )
        known = self._production(qty=2)
        known.action_confirm()
        known._mes_adopt("53106")
        response = self._post(self._vendor_sync("53106", "PP-1"), content_type="application/xml")
        self.assertEqual(response.status_code, 200, response.text)
        events = self.env["mes.message"].browse(response.json()["message_id"]).child_ids
        self.assertEqual(
            events.sorted("sequence").mapped("message_type"),
            ["material_consumed", "operation_completed"],
        )
        self.assertEqual(set(events.mapped("order_ref")), {"MES:53106"})  # one lane
        self.assertEqual(events.sorted("sequence").mapped("sequence"), [1, 2])
        for event in events.sorted("sequence"):
            event._process()
            self.assertEqual(event.state, "processed", event.error_text)
        self.assertEqual(events.production_id, known)
        screws = known.move_raw_ids.filtered(lambda m: m.product_id == self.screw)
        self.assertEqual(screws.quantity, 8)
        # An MES order Odoo does not know: kept, waiting, saying which, fixed by adopting it.
        unknown = self._production(qty=2)
        unknown.action_confirm()
        response = self._post(self._vendor_sync("53107", "PP-2"), content_type="application/xml")
        events = self.env["mes.message"].browse(response.json()["message_id"]).child_ids
        waiting = events.sorted("sequence")[0]
        waiting._process()
        self.assertEqual((waiting.state, waiting.cause_code), ("waiting", "unknown_mes_order"))
        self.assertIn("unknown MES order 53107", waiting.error_text)
        self.assertEqual(
            waiting._cause_sentence(waiting.cause_code, waiting.cause_value),
            "No order of Odoo is MES order 53107",
        )
        label, fix = waiting._fix_action()
        self.assertEqual(label, "Adopt MES order 53107")
        candidates = self.env["mrp.production"].search(fix["domain"])
        self.assertIn(unknown, candidates)
        self.assertNotIn(known, candidates)
        wizard = (
            self.env["mes.adopt.wizard"]
            .with_context(fix["context"], default_production_id=unknown.id)
            .create({})
        )
        self.assertEqual(wizard.mes_order_id, "53107")
        wizard.action_confirm()
        waiting._process()  # and the one behind it, in its lane
        self.assertEqual(set(events.mapped("state")), {"processed"}, events.mapped("error_text"))
        self.assertEqual(events.production_id, unknown)

    def test_reports_may_name_odoos_order_in_a_production_data(self):
        with self.assertRaisesRegex(ValidationError, "name the ProductionData"):
            self.backend.b2mml_order_key = "data"
        self.backend.write({"b2mml_order_key": "data", "b2mml_order_data_id": "ERP_ORDER"})
        production = self._production(qty=2)
        production.action_confirm()
        body = self._vendor_sync("53108", "PP-3").replace(
            "<ProcessSegmentID>10</ProcessSegmentID>",
            "<ProcessSegmentID>10</ProcessSegmentID><ProductionData><ID>ERP_ORDER</ID><Value>"
            f"<ValueString>{production.name}</ValueString></Value></ProductionData>",
        )
        response = self._post(body, content_type="application/xml")
        events = self.env["mes.message"].browse(response.json()["message_id"]).child_ids
        self.assertEqual(len(events), 2)
        self.assertEqual(
            {(e.order_ref, e.mes_order_id) for e in events}, {(production.name, "53108")}
        )

    def test_json_events_may_name_their_order_by_the_mes_order_id_alone(self):
        production = self._production()
        stored = []
        for number, mes_order_id in enumerate(("X" * 63 + "1", "X" * 63 + "2", "53109"), 1):
            event = self._event(production, f"BY-MES-ID-{number}")
            del event["order_ref"]
            event["mes_order_id"] = mes_order_id
            response = self._post(event)
            self.assertEqual(response.status_code, 202, response.text)
            stored.append(self.env["mes.message"].browse(response.json()["message_id"]))
        refs = [message.order_ref for message in stored]
        self.assertEqual(refs[2], "MES:53109")
        # Long ids keep lanes of their own, within the column.
        self.assertEqual([len(ref) for ref in refs[:2]], [64, 64])
        self.assertNotEqual(refs[0], refs[1])
        self.assertTrue(refs[0].startswith("MES:XXXX"))
        # Without either, an order event is refused naming what is missing.
        event = self._event(production, "BY-NOTHING")
        del event["order_ref"]
        response = self._post(event)
        self.assertEqual(response.status_code, 422)
        self.assertEqual(
            response.json()["errors"], [{"field": "order_ref", "reason": "is missing"}]
        )

    def test_scrap_and_downtime_in_b2mml_post_by_the_backends_conventions(self):
        self.backend.write(
            {"consumption_owner": "mes", "b2mml_scrap_use": "Reject", "b2mml_downtime_id": "StopID"}
        )
        tag = self.env["stock.scrap.reason.tag"].create({"name": "Damaged (B2MML)"})
        self._map("scrap_reason", "DMG", scrap_tag_id=tag)
        self._map("downtime_reason", "BRK", loss_id=self.env.ref("mrp.block_reason1"))
        production = self._production(qty=2)
        production.action_confirm()

        def prop(element, name, value):
            return (
                f"<{element}Property><ID>{name}</ID><Value><ValueString>{value}</ValueString>"
                f"</Value></{element}Property>"
            )

        body = self._performance(production).replace(
            "<SegmentState>",
            "<EquipmentActual><EquipmentID>T-ASM</EquipmentID>"
            + prop("EquipmentActual", "StopID", "DT-B2MML-1")
            + prop("EquipmentActual", "DowntimeReason", "BRK")
            + prop("EquipmentActual", "DowntimeStart", at(0, "09:10:00"))
            + prop("EquipmentActual", "DowntimeEnd", at(0, "09:25:00"))
            + "</EquipmentActual>"
            "<MaterialActual><MaterialDefinitionID>T-SCR</MaterialDefinitionID>"
            "<MaterialUse>Reject</MaterialUse><Quantity><QuantityString>3</QuantityString>"
            "<UnitOfMeasure>Units</UnitOfMeasure></Quantity>"
            + prop("MaterialActual", "ScrapReason", "DMG")
            + "</MaterialActual><SegmentState>",
        )
        response = self._post(body, content_type="application/xml")
        self.assertEqual(response.status_code, 200, response.text)
        events = self.env["mes.message"].browse(response.json()["message_id"]).child_ids
        events = events.sorted("sequence")
        self.assertEqual(
            events.mapped("message_type"),
            [
                "downtime_started",
                "downtime_ended",
                "material_consumed",
                "material_consumed",
                "output_produced",
                "scrap_reported",
                "operation_completed",
                "order_completed",
            ],
        )
        for event in events:
            event._process()
            self.assertEqual(event.state, "processed", event.error_text)
        scrap = events.filtered(lambda m: m.message_type == "scrap_reported").scrap_ids
        self.assertEqual(
            (scrap.product_id, scrap.scrap_qty, scrap.scrap_reason_tag_ids, scrap.state),
            (self.screw, 3, tag, "done"),
        )
        downtime = events[0].productivity_ids
        self.assertEqual(
            (downtime.workcenter_id, downtime.mes_downtime_ref, downtime.duration),
            (self.wc_asm, "DT-B2MML-1", 15),
        )

    def test_a_report_resent_with_more_in_it_posts_only_the_new_events_in_turn(self):
        production = self._production(qty=2)
        production.action_confirm()
        first = self._post(self._performance(production), content_type="application/xml")
        events = self.env["mes.message"].browse(first.json()["message_id"]).child_ids
        self.assertEqual(sorted(events.mapped("sequence")), [1, 2, 3, 4, 5])
        # The same report (same ID), now with one more material: the five it had are
        # duplicates and take no number; the new one follows the order's last.
        more = self._performance(production).replace(
            "<SegmentState>",
            "<MaterialActual><MaterialDefinitionID>T-SCR</MaterialDefinitionID>"
            "<MaterialUse>Consumed</MaterialUse><Quantity><QuantityString>1</QuantityString>"
            "<UnitOfMeasure>Units</UnitOfMeasure></Quantity></MaterialActual><SegmentState>",
        )
        again = self._post(more, content_type="application/xml").json()
        statuses = [result["status"] for result in again["results"]]
        self.assertEqual(statuses.count("duplicate"), 5)
        self.assertEqual(statuses.count("accepted"), 1)
        new = self.env["mes.message"].browse(again["message_id"]).child_ids
        self.assertEqual(new.sequence, 6)

    def test_a_refused_process_sent_again_is_refused_again(self):
        production = self._production(qty=2)
        broken = self._wrapped(self._performance(production), "Process").replace(
            "<QuantityString>8</QuantityString>", "<QuantityString>eight</QuantityString>"
        )
        ns = {"b": "http://www.wbf.org/xml/B2MML-V0401"}
        for _attempt in range(2):
            response = self._post(broken, content_type="application/xml")
            answer = etree.fromstring(response.content)
            self.assertEqual(
                answer.find(".//b:ResponseExpression", ns).get("actionCode"), "Rejected"
            )
        # Refused for its envelope itself: answered as a transaction all the same.
        no_noun = (
            broken.split("<ProductionPerformance>")[0]
            + "</DataArea></ProcessProductionPerformance>"
        )
        response = self._post(no_noun, content_type="application/xml")
        self.assertEqual(response.status_code, 422)
        self.assertEqual(response.headers["Content-Type"], "application/xml; charset=utf-8")

    def test_one_mes_order_is_one_order_of_odoo(self):
        self.backend.export_trigger = "manual"
        first, second = self._production(qty=1), self._production(qty=1)
        (first | second).action_confirm()
        first._mes_adopt("777")
        with self.assertRaisesRegex(UserError, f"MES order 777 is already {first.name}"):
            second._mes_adopt("777")
        # An order the MES took without saying its id is bound to it.
        second.sudo().mes_state = "sent"
        second.mes_backend_id = self.backend
        second._mes_adopt("778")
        self.assertEqual((second.mes_state, second.mes_order_id), ("acknowledged", "778"))
        with self.assertRaisesRegex(ValidationError, "reads it as consumption"):
            self.backend.b2mml_scrap_use = "Consumed"

    def test_xml_bomb_is_rejected_unexpanded_and_kept(self):
        bomb = (
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
            '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
            '<ProductionPerformance xmlns="http://www.mesa.org/xml/B2MML-V0600">&lol3;'
            "</ProductionPerformance>"
        )
        response = self._post(bomb, content_type="application/xml")
        self.assertEqual(response.status_code, 422)
        answer = response.json()
        self.assertEqual(answer["status"], "rejected")
        message = self.env["mes.message"].browse(answer["message_id"])
        self.assertEqual((message.state, message.error_code), ("error", "invalid_b2mml"))
        self.assertEqual(message.payload, bomb)
        self.assertNotIn("lollol", message.error_text)
        self.assertFalse(message.child_ids)

    def test_corrected_redelivery_of_a_refused_event_is_taken(self):
        production = self._production()
        event = self._event(production, "IN-FIX")
        event["data"]["quantity"] = -1
        self.assertEqual(self._post(event).status_code, 422)
        event["data"]["quantity"] = 5
        response = self._post(event)
        self.assertEqual(response.status_code, 202, response.text)
        message = self.env["mes.message"].browse(response.json()["message_id"])
        self.assertEqual((message.state, json.loads(message.payload)), ("received", event))
        self.assertEqual(json.loads(message.payload_original)["data"]["quantity"], -1)
        self.assertEqual(self._post(event).json()["status"], "duplicate")

    def test_b2mml_documents_for_one_order_are_numbered_one_after_the_other(self):
        production = self._production(qty=2)
        production.action_confirm()
        first = self._post(self._performance(production), content_type="application/xml")
        body = self._performance(production).replace(f"PP-{production.id}", f"PP2-{production.id}")
        second = self._post(body, content_type="application/xml")
        one, two = (
            self.env["mes.message"].browse(r.json()["message_id"]).child_ids
            for r in (first, second)
        )
        self.assertEqual(sorted(one.mapped("sequence")), [1, 2, 3, 4, 5])
        self.assertEqual(sorted(two.mapped("sequence")), [6, 7, 8, 9, 10])


@tagged("post_install", "-at_install")
class TestMessageIndexes(TransactionCase):
    def test_the_message_log_keeps_only_the_indexes_its_lookups_use(self):
        # Every stored message writes each index: none on columns of a few values, none
        # holding the empty rows of columns most messages leave empty.
        self.env.cr.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'mes_message'"
        )
        indexes = dict(self.env.cr.fetchall())
        for column in ("backend_id", "company_id", "direction", "message_type", "state"):
            self.assertNotIn(f"mes_message__{column}_index", indexes)
        for column in (
            "mes_order_id",
            "production_id",
            "error_code",
            "cause_code",
            "error_cause",
            "job_uuid",
        ):
            self.assertTrue(
                indexes[f"mes_message__{column}_index"].endswith(f"WHERE ({column} IS NOT NULL)"),
                indexes[f"mes_message__{column}_index"],
            )
        # The intake's duplicate search and the lanes keep theirs.
        for name in (
            "mes_message__external_id_index",
            "mes_message_external_id_unique_idx",
            "mes_message_lane_next_idx",
            "mes_message_lane_numbers_idx",
            "mes_message_open_idx",
        ):
            self.assertIn(name, indexes)
