"""B2MML answers to what Odoo sends: the client reads an MES's Acknowledge or ConfirmBOD,
the simulator answers in B2MML when asked, and a CancelProductionSchedule cancels."""

import json
import signal
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from b2mml_xsd import load_xsd
from lxml import etree
from orders import order_document

from mes_connector import (
    MesAuthError,
    MesPermanentError,
    MesRejectedError,
    MessageValidationError,
    MesTransientError,
    master_data_idempotency_key,
    order_idempotency_key,
)
from mes_connector import bod as bods
from mes_connector.b2mml import (
    NS_V0401,
    NS_V0500,
    NS_V0600,
    order_to_production_schedule,
    production_schedule_to_order,
)
from mes_connector.b2mml_master import master_data_to_b2mml
from mes_connector.client import MAX_ANSWER_BYTES, MasterDataAck, MesClient, OrderAck
from mes_connector.master_data import Equipment, Material
from mes_connector.simulator import __main__ as cli
from mes_connector.simulator.server import ANSWER_FORMATS

ORDER_ID = "WH/MO/00001"
KEY = order_idempotency_key("test-db/SIM", ORDER_ID, 1)
SENT_AT = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
OAGIS = "http://www.openapplications.org/oagis/9"


# ---------------------------------------------------------------------------
# A tiny MES that answers what it is told
# ---------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass

    def do_POST(self):
        server = self.server.answers
        length = int(self.headers.get("Content-Length") or 0)
        server.requests.append(
            {
                "path": self.path,
                "headers": dict(self.headers),
                "body": self.rfile.read(length) if length else b"",
            }
        )
        body = server.body if isinstance(server.body, bytes) else server.body.encode()
        self.send_response(server.status)
        if server.content_type:
            self.send_header("Content-Type", server.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class AnswerServer:
    """Answers every POST with ``status``, ``body`` (bytes or text) and ``content_type``."""

    def __init__(self):
        self.status = 200
        self.body = b""
        self.content_type = "application/xml"
        self.requests = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.answers = self
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self):
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, body, status=200, content_type="application/xml"):
        self.body, self.status, self.content_type = body, status, content_type

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def mes():
    server = AnswerServer()
    yield server
    server.stop()


@pytest.fixture
def client(mes):
    client = MesClient(mes.url, api_key="k-1", timeout=(2, 5))
    yield client
    client.session.close()


def _schedule(order=None):
    return order_to_production_schedule(order or order_document(), published_at=SENT_AT)


def _process(order=None, verb="Process", bod_id="ODOO-BOD-1"):
    return bods.wrap(_schedule(order), verb, sender="ODOO", bod_id=bod_id, created=SENT_AT)


def _application(bod_id="MES-ANSWER-1"):
    return (
        "<ApplicationArea><Sender><LogicalID>MES-7</LogicalID></Sender>"
        f"<CreationDateTime>2026-03-02T08:30:05Z</CreationDateTime><BODID>{bod_id}</BODID>"
        "</ApplicationArea>"
    )


def _ack(
    ns,
    code="Accepted",
    *,
    request_ids=(),
    schedule_notes=(),
    status=None,
    verb="Acknowledge",
    noun="ProductionSchedule",
):
    """An ``<verb><noun>`` answer: ResponseExpression ``code`` (None: none), the
    ChangeStatus ``status`` (Code, Description, Reasons) and the noun's Descriptions
    and ProductionRequest IDs."""
    criteria = f'<ResponseExpression actionCode="{code}"/>' if code else ""
    if status:
        criteria += "<ChangeStatus>"
        criteria += "".join(
            f"<{name}>{text}</{name}>"
            for name, texts in status
            for text in ([texts] if isinstance(texts, str) else texts)
        )
        criteria += "</ChangeStatus>"
    content = "<ID>WH/MO/00001/R1</ID>" if noun == "ProductionSchedule" else "<ID>C-LEG</ID>"
    content += "".join(f"<Description>{note}</Description>" for note in schedule_notes)
    content += "".join(
        f"<ProductionRequest><ID>{request_id}</ID></ProductionRequest>"
        for request_id in request_ids
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{verb}{noun} xmlns="{ns}" releaseID="1.0">'
        f"{_application()}<DataArea><{verb}>"
        f"<ResponseCriteria>{criteria}</ResponseCriteria></{verb}>"
        f"<{noun}>{content}</{noun}></DataArea></{verb}{noun}>"
    ).encode()


def _confirm(ns, code="Accepted", bod_content="", status=None, root_ns=None):
    """A ``ConfirmBOD``: ResponseExpression ``code`` (None: none), a ChangeStatus
    Description ``status``, ``bod_content`` inside its BOD."""
    criteria = f'<ResponseExpression actionCode="{code}"/>' if code else ""
    if status:
        criteria += f"<ChangeStatus><Code>{code}</Code><Description>{status}</Description>"
        criteria += "</ChangeStatus>"
    return (
        f'<ConfirmBOD xmlns="{root_ns or ns}">{_application()}<DataArea><Confirm>'
        f"<ResponseCriteria>{criteria}</ResponseCriteria></Confirm>"
        f"<BOD>{bod_content}</BOD></DataArea></ConfirmBOD>"
    ).encode()


def _valid(schema_file, xml):
    schema = load_xsd(schema_file)
    document = etree.fromstring(xml)
    if not schema.validate(document):
        pytest.fail("not valid against the XSD:\n" + "\n".join(str(e) for e in schema.error_log))
    return document


def _body(code, outcome, notes=(), bod_id="MES-ANSWER-1", answer="AcknowledgeProductionSchedule"):
    return {
        "status": outcome,
        "answer": answer,
        "code": code,
        "bod_id": bod_id,
        "notes": list(notes),
    }


NAMESPACES = pytest.mark.parametrize("ns", [NS_V0600, NS_V0401])


# ---------------------------------------------------------------------------
# The client reads an Acknowledge
# ---------------------------------------------------------------------------


def test_answers_written_here_are_b2mml_v0600():
    """What these tests answer with is what the V0600 XSDs allow."""
    schedule = "B2MML-V0600-ProductionSchedule.xsd"
    _valid(schedule, _ack(NS_V0600, request_ids=["MES-42"]))
    _valid(schedule, _ack(NS_V0600, "Modified", request_ids=["MES-42"], verb="Respond"))
    _valid(
        schedule,
        _ack(
            NS_V0600,
            "Rejected",
            schedule_notes=["line 4 is down"],
            status=[("Code", "Rejected"), ("Description", "not now"), ("Reason", ["R1", "R2"])],
        ),
    )
    _valid(schedule, _ack(NS_V0600, None, status=[("Code", "Rejected")]))
    confirm = "B2MML-V0600-ConfirmBOD.xsd"
    _valid(confirm, _confirm(NS_V0600))
    _valid(confirm, _confirm(NS_V0600, "Rejected", "<Note>no</Note>", status="refused"))
    _valid("B2MML-V0600-Material.xsd", _ack(NS_V0600, noun="MaterialInformation"))


@NAMESPACES
@pytest.mark.parametrize("http", [200, 201, 409])
def test_accepted_with_the_mes_order_id(client, mes, ns, http):
    mes.answer(_ack(ns, request_ids=["MES-42"]), status=http)
    ack = client.send_order_xml(_process(), KEY)
    assert ack == OrderAck(
        "MES-42", False, {**_body("Accepted", "accepted"), "mes_order_id": "MES-42"}
    )
    [request] = mes.requests
    assert request["path"] == "/api/v1/orders"
    assert request["headers"]["Content-Type"] == "application/xml"
    assert request["headers"]["Accept"] == (
        "application/json, application/xml;q=0.9, text/xml;q=0.8"
    )
    assert request["headers"]["Idempotency-Key"] == KEY


@NAMESPACES
@pytest.mark.parametrize(
    "request_ids",
    [
        [ORDER_ID],  # an echo of Odoo's request: the MES keeps Odoo's id
        [],  # no ProductionRequest
        ["MES-42", "MES-43"],  # which one?
        [""],  # an empty ID
    ],
)
def test_accepted_without_an_mes_order_id_is_taken_for_later(client, mes, ns, request_ids):
    mes.answer(_ack(ns, request_ids=request_ids))
    ack = client.send_order_xml(_process(), KEY)
    assert ack == OrderAck(None, False, {**_body("Accepted", "accepted"), "mes_order_id": None})


def test_the_order_id_odoo_sent_is_read_from_what_it_sent(client, mes):
    # A JSON order answered in B2MML: its order_id is what an echo is compared with.
    mes.answer(_ack(NS_V0600, request_ids=["WH/MO/00009"]))
    assert client.send_order(order_document(order_id="WH/MO/00009"), KEY).mes_order_id is None
    assert client.send_order(order_document(), KEY).mes_order_id == "WH/MO/00009"
    # A bare schedule, or one in its BOD.
    assert client.send_order_xml(_schedule(), KEY).mes_order_id == "WH/MO/00009"
    mes.answer(_ack(NS_V0600, request_ids=[ORDER_ID]))
    assert client.send_order_xml(_schedule(), KEY).mes_order_id is None
    assert client.send_order_xml(_process(verb="Change"), KEY).mes_order_id is None


@NAMESPACES
def test_modified_and_respond_are_acks(client, mes, ns):
    mes.answer(_ack(ns, "Modified", request_ids=["MES-42"], verb="Respond"))
    ack = client.send_order_xml(_process(verb="Change"), KEY)
    assert ack == OrderAck(
        "MES-42",
        False,
        {
            **_body("Modified", "modified", answer="RespondProductionSchedule"),
            "mes_order_id": "MES-42",
        },
    )
    # The ChangeStatus' Code when there is no ResponseExpression; any case.
    mes.answer(_ack(ns, None, request_ids=["MES-7"], status=[("Code", "accepted")]))
    assert client.send_order_xml(_process(), KEY).mes_order_id == "MES-7"


@NAMESPACES
@pytest.mark.parametrize(("http", "status"), [(200, None), (422, 422), (409, 409)])
def test_rejected_carries_the_mes_notes(client, mes, ns, http, status):
    mes.answer(
        _ack(
            ns,
            "Rejected",
            request_ids=[ORDER_ID],
            schedule_notes=["line 4 is down until Friday"],
            status=[
                ("Code", "Rejected"),
                ("Description", "capacity exhausted"),
                ("Reason", ["no free slot", "capacity exhausted"]),
            ],
        ),
        status=http,
    )
    with pytest.raises(MesRejectedError) as info:
        client.send_order_xml(_process(), KEY)
    error = info.value
    reason = "capacity exhausted; no free slot; line 4 is down until Friday"
    assert str(error) == (
        f"MES rejected the order (AcknowledgeProductionSchedule Rejected, HTTP {http}): {reason}"
    )
    assert (error.status, error.reason) == (status, reason)
    assert isinstance(error, MesPermanentError)
    assert not isinstance(error, MesAuthError)


@NAMESPACES
def test_rejected_by_change_status_code_alone_and_without_reason(client, mes, ns):
    mes.answer(_ack(ns, None, status=[("Code", "Rejected")]))
    with pytest.raises(MesRejectedError) as info:
        client.send_order_xml(_process(), KEY)
    assert str(info.value) == (
        "MES rejected the order (AcknowledgeProductionSchedule Rejected, HTTP 200): "
        "AcknowledgeProductionSchedule Rejected, no reason given"
    )
    # One Rejected among several criteria rejects.
    two = _ack(ns, "Accepted").replace(
        b"</ResponseCriteria>",
        b'</ResponseCriteria><ResponseCriteria><ResponseExpression actionCode="Rejected"/>'
        b"</ResponseCriteria>",
    )
    mes.answer(two)
    with pytest.raises(MesRejectedError, match=r"\(AcknowledgeProductionSchedule Rejected"):
        client.send_order_xml(_process(), KEY)


@NAMESPACES
@pytest.mark.parametrize("code", ["Add", "Replaced", None])
def test_an_acknowledge_without_an_outcome_is_transient(client, mes, ns, code):
    mes.answer(_ack(ns, code, request_ids=["MES-42"]))
    with pytest.raises(MesTransientError) as info:
        client.send_order_xml(_process(), KEY)
    assert str(info.value) == (
        "answer AcknowledgeProductionSchedule (HTTP 200) says neither Accepted, Modified nor "
        f"Rejected: {code or 'no actionCode'}"
    )
    assert info.value.status == 200


def test_an_acknowledge_of_another_version_or_noun(client, mes):
    mes.answer(_ack(NS_V0500, request_ids=["MES-5"]))
    assert client.send_order_xml(_process(), KEY).mes_order_id == "MES-5"
    # Any noun is an answer; only a ProductionSchedule names an MES order.
    mes.answer(_ack(NS_V0600, noun="MaterialInformation"))
    ack = client.send_order_xml(_process(), KEY)
    assert ack.mes_order_id is None
    assert ack.body["answer"] == "AcknowledgeMaterialInformation"


# ---------------------------------------------------------------------------
# The client reads a ConfirmBOD
# ---------------------------------------------------------------------------


@NAMESPACES
def test_confirm_bod_success_is_an_ack_without_mes_order_id(client, mes, ns):
    mes.answer(_confirm(ns, bod_content="<Description>queued for planning</Description>"))
    ack = client.send_order_xml(_process(verb="Sync"), KEY)
    body = _body("Accepted", "accepted", ["queued for planning"], answer="ConfirmBOD")
    assert ack == OrderAck(None, False, {**body, "mes_order_id": None})
    # OAGIS' own form: a BODSuccessMessage, no ResponseCriteria.
    mes.answer(_confirm(ns, None, "<BODSuccessMessage/>"))
    ack = client.send_order_xml(_process(verb="Sync"), KEY)
    assert ack.body["code"] == "BODSuccessMessage"
    assert ack.mes_order_id is None


@NAMESPACES
def test_confirm_bod_rejected_or_failed_names_why(client, mes, ns):
    mes.answer(
        _confirm(
            ns,
            "Rejected",
            "<Description>schedule WH/MO/00001/R1</Description><Note>plant closed</Note>",
            status="refused by planning",
        ),
        status=422,
    )
    with pytest.raises(MesRejectedError) as info:
        client.send_order_xml(_process(verb="Sync"), KEY)
    assert str(info.value) == (
        "MES rejected the order (ConfirmBOD Rejected, HTTP 422): refused by planning; "
        "schedule WH/MO/00001/R1; plant closed"
    )
    assert info.value.status == 422

    failure = (
        "<BODFailureMessage><ErrorProcessMessage><Description>unknown material C-9"
        "</Description><Note>create it first</Note></ErrorProcessMessage>"
        "<ErrorProcessMessage><Description>unknown equipment WC-1</Description>"
        "</ErrorProcessMessage></BODFailureMessage>"
    )
    mes.answer(_confirm(ns, None, failure))
    with pytest.raises(MesRejectedError) as info:
        client.send_order_xml(_process(verb="Sync"), KEY)
    assert str(info.value) == (
        "MES rejected the order (ConfirmBOD BODFailureMessage, HTTP 200): unknown material "
        "C-9; create it first; unknown equipment WC-1"
    )
    assert info.value.status is None
    # A failure wins over an Accepted of the same answer.
    mes.answer(_confirm(ns, "Accepted", failure))
    with pytest.raises(MesRejectedError, match="BODFailureMessage"):
        client.send_order_xml(_process(verb="Sync"), KEY)


def test_confirm_bod_partial_failure_names_what_failed(client, mes):
    partial = (
        "<PartialBODFailureMessage><NounSuccessMessage/><NounFailureMessage>"
        "<ErrorProcessMessage><Description>operation 20: resource WC-9 unknown</Description>"
        "</ErrorProcessMessage></NounFailureMessage></PartialBODFailureMessage>"
    )
    mes.answer(_confirm(NS_V0600, None, partial))
    with pytest.raises(MesRejectedError) as info:
        client.send_order_xml(_process(verb="Sync"), KEY)
    assert str(info.value) == (
        "MES took only part of the order (ConfirmBOD PartialBODFailureMessage, HTTP 200); "
        "what failed: operation 20: resource WC-9 unknown"
    )
    assert info.value.reason == "operation 20: resource WC-9 unknown"


def test_an_oagis_confirm_bod_is_read(client, mes):
    failure = (
        f'<oa:BODFailureMessage xmlns:oa="{OAGIS}"><oa:ErrorProcessMessage>'
        "<oa:Description>duplicate BODID</oa:Description></oa:ErrorProcessMessage>"
        "</oa:BODFailureMessage>"
    )
    mes.answer(_confirm(OAGIS, None, failure))
    with pytest.raises(MesRejectedError, match=r"BODFailureMessage, HTTP 200\): duplicate BODID$"):
        client.send_order_xml(_process(verb="Sync"), KEY)


# ---------------------------------------------------------------------------
# What the client cannot take as an answer
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b"<Status><Code>OK</Code></Status>",
            "answer is XML that is no B2MML answer (Acknowledge, Respond or ConfirmBOD): "
            "<Status> OK (HTTP 200)",
        ),
        (
            _schedule(),  # a B2MML document, but no answer
            "answer is XML that is no B2MML answer (Acknowledge, Respond or ConfirmBOD): "
            "<ProductionSchedule> WH/MO/00001/R1 create revision 1 of WH/MO/00001 "
            "2026-03-02T08:30:00Z WH/MO/00001 0 WH/MO/00001 Table Revision ... (HTTP 200)",
        ),
        (
            f'<AcknowledgeProductionSchedule xmlns="urn:other">{_application()}'
            "</AcknowledgeProductionSchedule>".encode(),
            "answer is XML that is no B2MML answer (Acknowledge, Respond or ConfirmBOD): "
            "<AcknowledgeProductionSchedule> MES-7 2026-03-02T08:30:05Z MES-ANSWER-1 (HTTP 200)",
        ),
        (
            b"<Acknowledge>" + b"x" * 5000 + b"</Acknowledge>",
            "answer is XML that is no B2MML answer (Acknowledge, Respond or ConfirmBOD): "
            "<Acknowledge> " + "x" * 117 + "... (HTTP 200)",
        ),
    ],
    ids=["other", "a noun", "another namespace", "long"],
)
def test_other_xml_is_transient(client, mes, body, expected):
    mes.answer(body)
    with pytest.raises(MesTransientError) as info:
        client.send_order_xml(_process(), KEY)
    assert str(info.value) == expected
    assert info.value.status == 200


LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    b'<AcknowledgeProductionSchedule xmlns="http://www.mesa.org/xml/B2MML-V0600">&lol2;'
    b"</AcknowledgeProductionSchedule>"
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b'<ConfirmBOD xmlns="http://www.mesa.org/xml/B2MML-V0600">&xxe;</ConfirmBOD>'
)
DTD = 'cannot be read safely: (document): "<!DOCTYPE" is not accepted: B2MML documents must'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (LAUGHS, DTD),
        (XXE, DTD),
        (LAUGHS.decode().encode("utf-16"), DTD),
        (
            _ack(NS_V0600).replace(b"<DataArea>", b"<DataArea>" + b" " * MAX_ANSWER_BYTES),
            f"cannot be read safely: (document): {MAX_ANSWER_BYTES + len(_ack(NS_V0600))} "
            f"bytes are more than the limit of {MAX_ANSWER_BYTES}",
        ),
        (
            b"<AcknowledgeProductionSchedule><DataArea>" + b"s3cr3t" * 100,
            "cannot be read safely: (document): is not well-formed XML: ",
        ),
        (b"", None),  # an empty XML answer: not JSON either
    ],
    ids=["billion laughs", "external entity", "utf-16 dtd", "too large", "broken", "empty"],
)
def test_xml_that_cannot_be_read_safely_is_transient(client, mes, body, expected):
    mes.answer(body)
    with pytest.raises(MesTransientError) as info:
        client.send_order_xml(_process(), KEY)
    text = str(info.value)
    if expected is None:
        assert text == "answer is not JSON (HTTP 200)"
    else:
        assert text.startswith(f"answer is XML that {expected}")
        assert text.endswith("(HTTP 200)")
    # Never the body (the passwd file, the laughs), never more than a short sentence.
    assert "passwd" not in text
    assert "lollol" not in text
    assert "s3cr3ts3cr3t" not in text
    assert len(text) < 260


@pytest.mark.parametrize("http", [500, 502, 503])
@pytest.mark.parametrize("code", ["Accepted", "Rejected"])
def test_http_5xx_is_transient_whatever_the_xml_says(client, mes, http, code):
    mes.answer(
        _ack(NS_V0600, code, request_ids=["MES-42"], status=[("Description", "db down")]),
        status=http,
    )
    with pytest.raises(MesTransientError) as info:
        client.send_order_xml(_process(), KEY)
    assert str(info.value) == f"MES could not handle the call now (HTTP {http}): db down"
    assert info.value.status == http
    mes.answer(LAUGHS, status=http)
    with pytest.raises(MesTransientError, match=f"HTTP {http}.*cannot be read safely"):
        client.send_order_xml(_process(), KEY)


def test_other_statuses_decide_before_the_xml(client, mes):
    mes.answer(_ack(NS_V0600, request_ids=["MES-42"]), status=401)
    with pytest.raises(MesAuthError) as info:
        client.send_order_xml(_process(), KEY)
    assert info.value.status == 401
    mes.answer(_ack(NS_V0600, request_ids=["MES-42"]), status=429)
    with pytest.raises(MesTransientError) as info:
        client.send_order_xml(_process(), KEY)
    assert info.value.status == 429


def test_a_4xx_with_xml_that_is_no_answer_is_refused_as_before(client, mes):
    mes.answer(b"<error><message>order is locked</message></error>", status=409)
    with pytest.raises(MesRejectedError) as info:
        client.send_order_xml(_process(), KEY)
    assert info.value.status == 409
    assert info.value.reason == (
        "XML that is no B2MML answer (Acknowledge, Respond or ConfirmBOD): <error> order is locked"
    )
    mes.answer(XXE, status=422)
    with pytest.raises(MesRejectedError) as info:
        client.send_order_xml(_process(), KEY)
    assert info.value.reason.startswith("XML that cannot be read safely")
    # An answer that says no outcome, after a 4xx: refused all the same.
    mes.answer(_ack(NS_V0600, "Add", schedule_notes=["what?"]), status=400)
    with pytest.raises(MesRejectedError) as info:
        client.send_order_xml(_process(), KEY)
    assert (info.value.status, info.value.reason) == (400, "what?")


ACK_42 = _ack(NS_V0600, request_ids=["MES-42"])


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/xml; charset=utf-8", ACK_42),
        ("application/b2mml+xml", ACK_42),
        # Without its declaration, which must come first: blanks before the root are XML.
        ("application/octet-stream", b"\n  " + ACK_42.split(b"\n", 1)[1]),
        (None, ACK_42),
    ],
    ids=["text/xml", "+xml", "octet-stream", "no type"],
)
def test_xml_is_known_by_its_type_or_its_first_character(client, mes, content_type, body):
    mes.answer(body, content_type=content_type)
    assert client.send_order_xml(_process(), KEY).mes_order_id == "MES-42"


def test_json_answers_are_read_as_before(client, mes):
    mes.answer(json.dumps({"status": "created", "mes_order_id": "MES-9"}), 201, "application/json")
    assert client.send_order_xml(_process(), KEY) == OrderAck(
        "MES-9", False, {"status": "created", "mes_order_id": "MES-9"}
    )
    # JSON under an XML type: still JSON.
    mes.answer(json.dumps({"status": "created", "mes_order_id": "MES-9"}), 201, "text/xml")
    assert client.send_order_xml(_process(), KEY).mes_order_id == "MES-9"
    mes.answer(json.dumps({"error": "locked"}), 409, "application/xml")
    with pytest.raises(MesRejectedError) as info:
        client.send_order_xml(_process(), KEY)
    assert info.value.reason == "locked"
    mes.answer("<html><body>maintenance</body></html>", 200, "text/html")
    with pytest.raises(MesTransientError, match=r"^answer is not JSON \(HTTP 200\)$"):
        client.send_order_xml(_process(), KEY)
    mes.answer("<html><body>no such order</body></html>", 404, "text/html")
    with pytest.raises(MesRejectedError) as info:
        client.send_order_xml(_process(), KEY)
    assert info.value.reason == "<html><body>no such order</body></html>"


# ---------------------------------------------------------------------------
# Master data answers
# ---------------------------------------------------------------------------


def _material_xml(code="C-LEG", revision=1, verb="Sync"):
    document = Material(code, name=f"Material {code}", uom="Units", revision=revision).to_dict()
    bare = master_data_to_b2mml(document)
    if verb is None:
        return bare
    return bods.wrap(bare, verb, sender="ODOO", bod_id=f"MD-{code}-{revision}", created=SENT_AT)


MD_KEY = master_data_idempotency_key("test-db/SIM", "material", "C-LEG", 1)


@NAMESPACES
def test_master_data_answers(client, mes, ns):
    mes.answer(_confirm(ns, bod_content="<Description>material C-LEG stored</Description>"))
    ack = client.send_master_data_xml(_material_xml(), MD_KEY)
    assert ack == MasterDataAck(
        False, _body("Accepted", "accepted", ["material C-LEG stored"], answer="ConfirmBOD")
    )
    assert mes.requests[-1]["path"] == "/api/v1/master-data"
    mes.answer(_ack(ns, noun="MaterialInformation"), status=201)
    assert client.send_master_data_xml(_material_xml(), MD_KEY) == MasterDataAck(
        False, _body("Accepted", "accepted", answer="AcknowledgeMaterialInformation")
    )
    mes.answer(_confirm(ns, "Rejected", "<Note>unit Units unknown</Note>"), status=422)
    with pytest.raises(MesRejectedError) as info:
        client.send_master_data_xml(_material_xml(), MD_KEY)
    assert str(info.value) == (
        "MES rejected the master data (ConfirmBOD Rejected, HTTP 422): unit Units unknown"
    )
    mes.answer(b"<ok/>", status=201)
    with pytest.raises(MesTransientError) as info:
        client.send_master_data_xml(_material_xml(), MD_KEY)
    assert str(info.value) == (
        "answer is XML that is no B2MML answer (Acknowledge, Respond or ConfirmBOD): <ok> "
        "(HTTP 201)"
    )
    mes.answer(_confirm(ns, "Rejected"), status=503)
    with pytest.raises(MesTransientError, match=r"HTTP 503\): ConfirmBOD Rejected, no reason"):
        client.send_master_data_xml(_material_xml(), MD_KEY)


# ---------------------------------------------------------------------------
# CancelProductionSchedule, GetProductionSchedule
# ---------------------------------------------------------------------------


def _cancel_revision(revision=2, order_id=ORDER_ID):
    return order_document(order_id=order_id, revision=revision, action="cancel")


def test_a_cancel_transaction_is_the_cancellation_of_its_order():
    cancel = _cancel_revision(3)
    wrapped = bods.wrap(_schedule(cancel), "Cancel", sender="ODOO", bod_id="B", created=SENT_AT)
    _valid("B2MML-V0600-ProductionSchedule.xsd", wrapped)
    assert production_schedule_to_order(wrapped) == production_schedule_to_order(_schedule(cancel))
    assert production_schedule_to_order(wrapped)["action"] == "cancel"
    assert production_schedule_to_order(wrapped)["revision"] == 3


def _without_action(xml):
    """The schedule without its Action parameter (an MES's or ERP's own schedule)."""
    root = etree.fromstring(xml)
    for parameter in root.iterfind(".//{*}ProductionParameter"):
        if parameter.findtext("{*}Parameter/{*}ID") == "Action":
            parameter.getparent().remove(parameter)
    return etree.tostring(root)


@pytest.mark.parametrize("ns", [NS_V0600, NS_V0500, NS_V0401])
def test_a_cancel_of_a_released_schedule_cancels_it(ns):
    # The schedule as it was sent (Released), in a Cancel: cancelled, at its revision.
    released = _without_action(_schedule(order_document(revision=2, action="change")))
    released = released.replace(NS_V0600.encode(), ns.encode())
    wrapped = bods.wrap(released, "Cancel", sender="ERP", bod_id="B", created=SENT_AT)
    order = production_schedule_to_order(wrapped)
    assert (order["action"], order["revision"], order["order_id"]) == ("cancel", 2, ORDER_ID)
    # Bare, or in another transaction, it is a change.
    assert production_schedule_to_order(released)["action"] == "change"


def test_a_cancel_whose_action_says_otherwise_is_refused():
    wrapped = bods.wrap(
        _schedule(order_document(revision=2, action="change")),
        "Cancel",
        sender="ODOO",
        bod_id="B",
        created=SENT_AT,
    )
    with pytest.raises(MessageValidationError) as info:
        production_schedule_to_order(wrapped)
    assert [(e.field, e.value, e.reason) for e in info.value.errors] == [
        (
            "ProductionRequest[1]/SegmentRequirement[1]/ProductionParameter[2]/Parameter/Value/"
            "ValueString",
            "change",
            "contradicts the CancelProductionSchedule transaction, which cancels the order",
        )
    ]
    # A forecast is still no order, cancelled or not.
    forecast = _schedule(_cancel_revision()).replace(
        b'<RequestState OtherValue="Cancelled">Other</RequestState>',
        b"<RequestState>Forecast</RequestState>",
    )
    wrapped = bods.wrap(forecast, "Cancel", sender="ODOO", bod_id="B", created=SENT_AT)
    with pytest.raises(MessageValidationError, match="is a forecast: no order to run"):
        production_schedule_to_order(wrapped)


def test_a_get_of_a_schedule_is_refused_as_a_request_for_data():
    wrapped = bods.wrap(_schedule(), "Get", sender="ODOO", bod_id="B", created=SENT_AT)
    with pytest.raises(MessageValidationError) as info:
        production_schedule_to_order(wrapped)
    [error] = info.value.errors
    assert (error.field, error.value) == ("(root)", "GetProductionSchedule")
    assert error.reason == (
        "is a Get transaction, a request for the schedules it names (the sender asks for "
        "data), not an order to run or cancel (it takes Process, Sync, Show, Change, "
        "Acknowledge, Respond, Cancel)"
    )


# ---------------------------------------------------------------------------
# The simulator answers in B2MML
# ---------------------------------------------------------------------------


def _post(sim, xml, key, path="orders"):
    return requests.post(
        f"{sim.url}/api/v1/{path}",
        data=xml,
        headers={
            "Authorization": f"Bearer {sim.api_key}",
            "Idempotency-Key": key,
            "Content-Type": "application/xml",
        },
        timeout=5,
    )


B = {"b": NS_V0600}


def _find(document, path, ns=NS_V0600):
    return document.findtext(path, namespaces={"b": ns})


def test_the_simulator_acknowledges_an_order_in_b2mml(make_simulator):
    sim = make_simulator(answer="bod")
    answer = _post(sim, _process(bod_id=KEY), KEY)
    assert (answer.status_code, answer.headers["Content-Type"]) == (201, "application/xml")
    document = _valid("B2MML-V0600-ProductionSchedule.xsd", answer.content)
    assert etree.QName(document).localname == "AcknowledgeProductionSchedule"
    assert document.get("releaseID") == "1.0"
    assert _find(document, "b:ApplicationArea/b:Sender/b:LogicalID") == "MES-SIMULATOR"
    acknowledge = "b:DataArea/b:Acknowledge"
    assert _find(document, f"{acknowledge}/b:OriginalApplicationArea/b:BODID") == KEY
    expression = document.find(f"{acknowledge}/b:ResponseCriteria/b:ResponseExpression", B)
    assert expression.get("actionCode") == "Accepted"
    assert document.find(f"{acknowledge}/b:ResponseCriteria/b:ChangeStatus", B) is None
    [schedule] = document.findall("b:DataArea/b:ProductionSchedule", B)
    assert _find(schedule, "b:ID") == "WH/MO/00001/R1"
    assert [e.text for e in schedule.findall("b:ProductionRequest/b:ID", B)] == ["MES-000001"]
    # Again: the same MES order, 200.
    again = _post(sim, _process(bod_id=KEY), KEY)
    assert again.status_code == 200
    assert _find(etree.fromstring(again.content), ".//b:ProductionRequest/b:ID") == "MES-000001"
    # A bare schedule: answered in V0600, without OriginalApplicationArea or schedule ID.
    key = order_idempotency_key("test-db/SIM", "WH/MO/00002", 1)
    bare = _post(sim, _schedule(order_document(order_id="WH/MO/00002")), key)
    document = _valid("B2MML-V0600-ProductionSchedule.xsd", bare.content)
    assert bare.status_code == 201
    assert document.find(f"{acknowledge}/b:OriginalApplicationArea", B) is None
    assert document.find("b:DataArea/b:ProductionSchedule/b:ID", B) is None
    assert _find(document, ".//b:ProductionRequest/b:ID") == "MES-000002"


def test_the_simulator_answers_in_the_namespace_of_the_request(make_simulator):
    sim = make_simulator(answer="bod")
    older = _process().replace(NS_V0600.encode(), NS_V0401.encode())
    answer = _post(sim, older, KEY)
    assert answer.status_code == 201
    document = etree.fromstring(answer.content)
    assert document.tag == f"{{{NS_V0401}}}AcknowledgeProductionSchedule"
    assert _find(document, ".//b:ProductionRequest/b:ID", NS_V0401) == "MES-000001"


def _rejection(answer):
    """(HTTP status, ChangeStatus Description, the schedule's Descriptions, its
    ProductionRequest IDs) of a Rejected acknowledgement, valid against the XSD."""
    document = _valid("B2MML-V0600-ProductionSchedule.xsd", answer.content)
    criteria = "b:DataArea/b:Acknowledge/b:ResponseCriteria"
    assert document.find(f"{criteria}/b:ResponseExpression", B).get("actionCode") == "Rejected"
    assert _find(document, f"{criteria}/b:ChangeStatus/b:Code") == "Rejected"
    schedule = document.find("b:DataArea/b:ProductionSchedule", B)
    return (
        answer.status_code,
        _find(document, f"{criteria}/b:ChangeStatus/b:Description"),
        [e.text for e in schedule.findall("b:Description", B)],
        [e.text for e in schedule.findall("b:ProductionRequest/b:ID", B)],
    )


def test_the_simulator_rejects_in_b2mml(make_simulator):
    sim = make_simulator(answer="bod", strict=True)
    # Strict: the master data the order names is unknown.
    assert _rejection(_post(sim, _process(), KEY)) == (
        422,
        "order names master data unknown to the MES: material FG-TABLE, material C-LEG, "
        "equipment WC-ASM",
        [
            'product.code: "FG-TABLE" is unknown to the MES: send its material master first',
            'components[0].product.code: "C-LEG" is unknown to the MES: send its material '
            "master first",
            'operations[0].resource: "WC-ASM" is unknown to the MES: send its equipment '
            "master first",
        ],
        [ORDER_ID],
    )
    # Not valid B2MML: the fields at fault.
    invalid = _process().replace(b"FG-TABLE</MaterialDefinitionID>", b"</MaterialDefinitionID>")
    assert _rejection(_post(sim, invalid, KEY)) == (
        422,
        "order is not valid B2MML",
        [
            "ProductionRequest[1]/SegmentRequirement[1]/MaterialRequirement[1]/"
            "MaterialDefinitionID: is missing"
        ],
        [],
    )
    # A revision out of order: 409.
    sim.strict = False
    change = order_document(revision=3, action="change")
    assert _rejection(_post(sim, _process(change, "Change"), "k-3")) == (
        409,
        "revision out of order: order WH/MO/00001 is unknown to the MES: revision 3 (change) "
        "cannot be applied before revision 1 (create)",
        [],
        [ORDER_ID],
    )
    # Without its key: 400.
    no_key = requests.post(
        f"{sim.url}/api/v1/orders",
        data=_process(),
        headers={"Authorization": f"Bearer {sim.api_key}", "Content-Type": "application/xml"},
        timeout=5,
    )
    assert _rejection(no_key) == (400, "the Idempotency-Key header is required", [], [])


def test_json_requests_are_answered_in_json_whatever_the_switch(make_simulator):
    sim = make_simulator(answer="bod")
    client = MesClient(sim.url, api_key=sim.api_key, timeout=(2, 5))
    assert client.send_order(order_document(), KEY) == OrderAck(
        "MES-000001", False, {"status": "created", "mes_order_id": "MES-000001"}
    )
    material = Material("C-LEG", name="Leg", uom="Units").to_dict()
    ack = client.send_master_data(material, MD_KEY)
    assert ack.body == {"status": "created", "kind": "material", "code": "C-LEG", "revision": 1}


def test_the_simulator_confirms_master_data_in_b2mml(make_simulator):
    sim = make_simulator(answer="bod", refuse_materials={"C-BAD": "no storage class"})
    confirm = "B2MML-V0600-ConfirmBOD.xsd"

    def confirmed(answer):
        document = _valid(confirm, answer.content)
        criteria = "b:DataArea/b:Confirm/b:ResponseCriteria"
        return (
            answer.status_code,
            document.find(f"{criteria}/b:ResponseExpression", B).get("actionCode"),
            _find(document, f"{criteria}/b:ChangeStatus/b:Description"),
            [e.text for e in document.findall("b:DataArea/b:BOD/b:Description", B)],
            [e.text for e in document.findall("b:DataArea/b:BOD/b:Note", B)],
            _find(document, "b:DataArea/b:Confirm/b:OriginalApplicationArea/b:BODID"),
        )

    path = "master-data"
    assert confirmed(_post(sim, _material_xml(), MD_KEY, path)) == (
        201,
        "Accepted",
        None,
        ["material C-LEG revision 1: created"],
        [],
        "MD-C-LEG-1",
    )
    assert confirmed(_post(sim, _material_xml(), MD_KEY, path)) == (
        200,
        "Accepted",
        None,
        ["material C-LEG revision 1: duplicate"],
        [],
        "MD-C-LEG-1",
    )
    assert confirmed(_post(sim, _material_xml(revision=1), "other-key", path)) == (
        409,
        "Rejected",
        "stale revision: material C-LEG: revision 1 arrives while the MES holds revision 1",
        [],
        [],
        "MD-C-LEG-1",
    )
    assert confirmed(_post(sim, _material_xml("C-BAD"), "k-bad", path)) == (
        422,
        "Rejected",
        "material refused: no storage class",
        [],
        [],
        "MD-C-BAD-1",
    )
    invalid = _material_xml("C-2").replace(
        b"<ValueString>1</ValueString>", b"<ValueString>one</ValueString>"
    )
    assert confirmed(_post(sim, invalid, "k-2", path)) == (
        422,
        "Rejected",
        "master data is not valid B2MML",
        [],
        [
            "DataArea/MaterialInformation[1]/MaterialDefinition[1]/MaterialDefinitionProperty[1]/"
            'Value/ValueString: "one" is not an integer'
        ],
        "MD-C-2-1",
    )
    # A bare document: answered in V0600 without OriginalApplicationArea.
    bare = confirmed(_post(sim, _material_xml("C-3", verb=None), "k-3", path))
    assert bare == (201, "Accepted", None, ["material C-3 revision 1: created"], [], None)


def test_the_answer_switch(make_simulator, simulator):
    with pytest.raises(ValueError, match="answer must be one of json, bod, got 'xml'"):
        make_simulator(answer="xml")
    assert ANSWER_FORMATS == ("json", "bod")
    control = f"{simulator.url}/api/v1/control"
    assert requests.post(control, json={"answer": "bod"}, timeout=5).json()["answer"] == "bod"
    assert simulator.answer == "bod"
    assert _post(simulator, _process(), KEY).headers["Content-Type"] == "application/xml"
    refused = requests.post(control, json={"answer": "b2mml"}, timeout=5)
    assert (refused.status_code, refused.json()) == (
        400,
        {"error": "answer: 'b2mml' must be one of json, bod"},
    )
    requests.post(control, json={"answer": "json"}, timeout=5)
    again = _post(simulator, _process(), KEY)
    assert (again.status_code, again.json()) == (
        200,
        {"status": "duplicate", "mes_order_id": "MES-000001"},
    )


def test_cli_answer_switch(monkeypatch, tmp_path):
    made = {}

    class FakeServer:
        url = "http://127.0.0.1:0"

        def __init__(self, **kwargs):
            made.update(kwargs)

        def start(self):
            return self

        def stop(self):
            pass

    monkeypatch.setattr(cli, "SimulatorServer", FakeServer)
    monkeypatch.setattr(signal, "signal", lambda _sig, handler: handler())
    cli.main(["--answer", "bod", "--db", str(tmp_path / "sim.sqlite")])
    assert made["answer"] == "bod"
    made["store"].close()
    cli.main(["--db", str(tmp_path / "sim.sqlite")])
    assert made["answer"] == "json"
    made["store"].close()
    with pytest.raises(SystemExit):
        cli.main(["--answer", "xml"])


# ---------------------------------------------------------------------------
# Round trip: Odoo's client and the simulator, both in B2MML
# ---------------------------------------------------------------------------


@pytest.fixture
def bod_sim(make_simulator):
    return make_simulator(answer="bod")


@pytest.fixture
def bod_client(bod_sim):
    client = MesClient(bod_sim.url, api_key=bod_sim.api_key, timeout=(2, 5))
    yield client
    client.session.close()


def _send(client, order, verb):
    """Send ``order`` as Odoo's backend does in transactions: its BOD's ID is the key."""
    key = order_idempotency_key("test-db/SIM", order["order_id"], order["revision"])
    return client.send_order_xml(_process(order, verb, bod_id=key), key)


def _accepted(mes_order_id):
    return {
        "status": "accepted",
        "answer": "AcknowledgeProductionSchedule",
        "code": "Accepted",
        "notes": [],
        "mes_order_id": mes_order_id,
    }


def _without_bod_id(ack):
    body = dict(ack.body)
    assert body.pop("bod_id")  # the MES's own, new each time
    return OrderAck(ack.mes_order_id, ack.duplicate, body)


def test_round_trip_of_an_order_its_revision_and_cancellation(bod_sim, bod_client):
    first = _send(bod_client, order_document(), "Process")
    assert _without_bod_id(first) == OrderAck("MES-000001", False, _accepted("MES-000001"))
    assert _without_bod_id(_send(bod_client, order_document(), "Process")) == (
        OrderAck("MES-000001", False, _accepted("MES-000001"))
    )
    change = order_document(revision=2, action="change", quantity=8.0)
    assert _send(bod_client, change, "Change").mes_order_id == "MES-000001"
    held = bod_sim.store.order("MES-000001")
    assert (held["revision"], held["quantity"], held["status"]) == (2, 8.0, "released")
    # Odoo's cancellation: a Change whose request state is Cancelled.
    assert _send(bod_client, _cancel_revision(3), "Change").mes_order_id == "MES-000001"
    held = bod_sim.store.order("MES-000001")
    assert (held["revision"], held["status"]) == (3, "cancelled")
    # Nothing more for a cancelled order: refused, with the MES's reason.
    with pytest.raises(MesRejectedError) as info:
        _send(bod_client, order_document(revision=4, action="change"), "Change")
    assert str(info.value) == (
        "MES rejected the order (AcknowledgeProductionSchedule Rejected, HTTP 409): "
        "revision out of order: order WH/MO/00001 is cancelled in the MES"
    )
    assert info.value.status == 409


def test_round_trip_of_a_cancel_production_schedule(bod_sim, bod_client):
    other = "WH/MO/00002"
    assert _send(bod_client, order_document(order_id=other), "Process").mes_order_id == (
        "MES-000001"
    )
    cancel = _send(bod_client, _cancel_revision(2, other), "Cancel")
    assert _without_bod_id(cancel) == OrderAck("MES-000001", False, _accepted("MES-000001"))
    held = bod_sim.store.order("MES-000001")
    assert (held["order_id"], held["revision"], held["status"]) == (other, 2, "cancelled")
    assert held["payload"]["action"] == "cancel"


def test_round_trip_of_a_get_is_a_refusal(bod_client, bod_sim):
    with pytest.raises(MesRejectedError) as info:
        _send(bod_client, order_document(), "Get")
    assert info.value.status == 422
    assert str(info.value) == (
        "MES rejected the order (AcknowledgeProductionSchedule Rejected, HTTP 422): order is "
        'not valid B2MML; (root): "GetProductionSchedule" is a Get transaction, a request for '
        "the schedules it names (the sender asks for data), not an order to run or cancel (it "
        "takes Process, Sync, Show, Change, Acknowledge, Respond, Cancel)"
    )
    assert bod_sim.store.orders() == []


def test_round_trip_of_a_strict_refusal(make_simulator):
    sim = make_simulator(answer="bod", strict=True)
    client = MesClient(sim.url, api_key=sim.api_key, timeout=(2, 5))
    for kind, document in (
        ("material", Material("FG-TABLE", name="Table", uom="Units").to_dict()),
        ("equipment", Equipment("WC-ASM", name="Assembly").to_dict()),
    ):
        key = master_data_idempotency_key("test-db/SIM", kind, document["code"], 1)
        client.send_master_data_xml(master_data_to_b2mml(document), key)
    with pytest.raises(MesRejectedError) as info:
        _send(client, order_document(), "Process")
    error = info.value
    assert error.status == 422
    assert str(error) == (
        "MES rejected the order (AcknowledgeProductionSchedule Rejected, HTTP 422): order names "
        "master data unknown to the MES: material C-LEG; components[0].product.code: "
        '"C-LEG" is unknown to the MES: send its material master first'
    )
    assert "C-LEG" in error.reason
    assert not isinstance(error, MesTransientError)
    assert sim.store.orders() == []
    client.session.close()


def test_round_trip_while_the_mes_takes_orders_for_later(bod_sim, bod_client):
    bod_sim.async_ack = True
    ack = _send(bod_client, order_document(), "Process")
    assert _without_bod_id(ack) == OrderAck(None, False, _accepted(None))
    assert bod_sim.store.order(ORDER_ID)["mes_order_id"] == "MES-000001"


def test_round_trip_of_master_data(make_simulator):
    sim = make_simulator(answer="bod", refuse_materials={"C-BAD": "no storage class for lots"})
    client = MesClient(sim.url, api_key=sim.api_key, timeout=(2, 5))
    ack = client.send_master_data_xml(_material_xml(), MD_KEY)
    assert ack.duplicate is False
    assert {k: v for k, v in ack.body.items() if k != "bod_id"} == {
        "status": "accepted",
        "answer": "ConfirmBOD",
        "code": "Accepted",
        "notes": ["material C-LEG revision 1: created"],
    }
    again = client.send_master_data_xml(_material_xml(), MD_KEY)
    assert again.body["notes"] == ["material C-LEG revision 1: duplicate"]
    with pytest.raises(MesRejectedError) as info:
        client.send_master_data_xml(_material_xml("C-BAD"), "k-bad")
    assert str(info.value) == (
        "MES rejected the master data (ConfirmBOD Rejected, HTTP 422): material refused: "
        "no storage class for lots"
    )
    assert (info.value.status, info.value.reason) == (
        422,
        "material refused: no storage class for lots",
    )
    with pytest.raises(MesRejectedError) as info:
        client.send_master_data_xml(_material_xml(), "k-stale")
    assert str(info.value) == (
        "MES rejected the master data (ConfirmBOD Rejected, HTTP 409): stale revision: "
        "material C-LEG: revision 1 arrives while the MES holds revision 1"
    )
    assert [item["code"] for item in sim.store.master_data()] == ["C-LEG"]
    client.session.close()
