"""The simulator's HTTP API and its background workers.

API (JSON, ``Authorization: Bearer <key>`` when the simulator has a key):

- ``GET  /api/v1/health``
- ``POST /api/v1/orders`` with ``Idempotency-Key``, JSON (``mes.order/1``) or B2MML
  (``application/xml``, a ``ProductionSchedule`` of V0401, V0500 or V0600, bare or in
  its Process/Change/Sync BOD; a ``CancelProductionSchedule`` cancels the order it
  names): 201 created, 200 duplicate, 400/422 with the fields at fault, 409 for a
  revision out of order, 401 without the right key, 503 while "down". In strict mode,
  422 for an order (not a cancellation) whose product, components or by-products are
  not active materials the MES holds, or whose operations' resources are not active
  equipment: ``{"error": "order names master data unknown to the MES", "reason":
  "material C-9, equipment WC-1", "errors": [{field, value, reason}]}``.
- ``POST /api/v1/master-data`` with ``Idempotency-Key``, JSON (``mes.material/1``,
  ``mes.equipment/1``, ``mes.bom/1``, ``mes.material_lot/1``) or B2MML
  (``application/xml``: MaterialInformation, EquipmentInformation or
  OperationsDefinitionInformation, bare or in its Sync/Process/Change BOD). The MES keeps
  the highest revision per (kind, code). 201 ``{"status": "created" | "updated", "kind",
  "code", "revision"}`` (a document of several records: the first's, and all of them in
  ``items``); 200 ``{"status": "duplicate", ...}`` for a key received before; 409
  ``{"error": "stale revision", "reason": ...}`` for a revision no newer than the one
  held; 422 ``{"error": ..., "errors": [...]}`` when invalid, ``{"error": "material
  refused", "reason": ...}`` for a material the MES refuses (``refuse_materials``).
- Answers in B2MML (``answer="bod"``, ``--answer bod``, control ``"answer": "bod"``):
  with the same HTTP statuses, an order sent in B2MML is answered with an
  ``AcknowledgeProductionSchedule`` and master data sent in B2MML with a
  ``ConfirmBOD`` (``application/xml``, B2MML V0600, or the namespace of the request's
  BOD; the request's ApplicationArea as OriginalApplicationArea). Accepted: the
  acknowledged ``ProductionSchedule`` (its ID the request's, in a BOD) holds one
  ``ProductionRequest`` whose ``ID`` is the MES order id (the order id Odoo sent
  while ``async_ack``: taken, no MES id yet); the ConfirmBOD's BOD a Description per
  record held (``material FG-1 revision 2: created``). Rejected (400, 409, 422):
  ResponseCriteria/ChangeStatus Code Rejected, its Description the error and reason
  of the JSON answer, each field at fault a Description of the ProductionSchedule (or
  a Note of the ConfirmBOD's BOD). JSON requests, and what the transport answers (401,
  404, 503, a master data body over the size limit), are answered in JSON whatever the
  switch.
- ``GET  /api/v1/master-data?kind=material|equipment|bom|lot``: ``{"items": [{kind, code,
  revision, active, payload, deliveries, received_at}]}`` in the order first received.
- ``GET  /api/v1/orders`` and ``GET /api/v1/orders/<mes id or order id>``
- ``POST /api/v1/orders/<id>/run``: the shop floor runs the whole order; every
  event (start, downtime, operations, consumption by lot, scrap, output, final
  confirmation) is queued for Odoo in sequence.
- ``POST /api/v1/orders/<id>/complete`` ``{"quantity": n}``: only the final
  confirmation of the order.
- ``POST /api/v1/materials`` ``{"lots": {"<product code>": ["<lot>", ...]}}``: lots
  the shop floor holds, used for lot-tracked components after the released lots Odoo
  sent as master data (in the order received); a lot on hold is never used.
- ``GET  /api/v1/events?after=<seq>&limit=<n>``: the event feed (pull mode).
- ``PUT  /api/v1/resources/<code>/status`` with ``Idempotency-Key``,
  ``{"status": "blocked" | "available", "reason", "since", "reference"}``: what Odoo
  says of a resource (under maintenance: blocked); ``GET /api/v1/resources`` lists them.
- ``GET  /api/v1/totals``: per order, what was reported: produced (and the serials of
  the units), consumed per product and lot or serial, scrap per reason and product,
  rework per reason and outcome, downtime minutes per resource.
- ``POST /api/v1/control`` ``{"down": bool, "delay": seconds, "auto_complete": seconds,
  "async_ack": bool, "breakdown_every": n, "quality_fail_every": n, "partial_every": n,
  "rework_every": n, "operators": ["<badge>", ...], "strict": bool,
  "refuse_materials": {"<code>": "<reason>"}, "answer": "json" | "bod"}`` (async_ack:
  answer 202 without the MES order id; every n-th order run has a 30-minute breakdown,
  fails its quality check (0: left to chance), is run in two shifts (a partial
  confirmation, then the rest), sends a unit to rework (good, then scrapped, in turn;
  0: never), names these operators on its operation reports; strict: orders must name known master
  data; refuse_materials: the MES refuses those materials with that reason; answer: how
  B2MML requests are answered, see above): fault switches (not authenticated: for
  tests and demos on 127.0.0.1).
"""

import hmac
import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from lxml import etree

from .. import b2mml, bod
from ..b2mml import NS_V0600, read_production_schedule
from ..b2mml_master import read_master_data
from ..client import OdooIntakeClient
from ..exceptions import MesError, MessageValidationError
from ..idempotency import MASTER_DATA_KINDS
from ..master_data import master_data_errors, master_data_identity
from ..messages import EVENT_SCHEMA
from ..validation import FieldError, validation_errors
from . import shopfloor
from .store import RevisionConflict, StaleRevision, Store

_logger = logging.getLogger(__name__)
# How the simulator reports to Odoo: JSON events, or B2MML (bare, or in a Sync BOD).
REPORT_FORMATS = ("json", "b2mml", "b2mml-bod")

# How the simulator answers an order or master data sent in B2MML: JSON, or the BOD
# an MES that speaks B2MML answers with (an AcknowledgeProductionSchedule, a ConfirmBOD).
ANSWER_FORMATS = ("json", "bod")
# Who the simulator's BODs say they come from (ApplicationArea/Sender/LogicalID).
SENDER = "MES-SIMULATOR"

MAX_BODY = 1024 * 1024
XML_TYPES = ("application/xml", "text/xml")


def _answer_start(name, envelope, accepted, status):
    """An answer BOD ``name`` to ``envelope``'s transaction (None: a bare document),
    in its namespace (V0600 for a bare document)."""
    return bod.reply(
        name,
        namespace=envelope.namespace if envelope else NS_V0600,
        accepted=accepted,
        sender=SENDER,
        bod_id=str(uuid.uuid4()),
        created=datetime.now(UTC).replace(microsecond=0),
        envelope=envelope,
        status=status,
    )


def acknowledge_schedule(
    envelope, *, accepted, order=None, mes_order_id=None, status=None, notes=()
):
    """The ``AcknowledgeProductionSchedule`` (bytes) that answers an order: Accepted or
    Rejected, in the namespace of ``envelope`` (the request's BOD; V0600 for a bare
    schedule), with the request's ApplicationArea as its OriginalApplicationArea.

    Its ``ProductionSchedule`` holds the request's schedule ID (when it came in a BOD),
    ``notes`` as its Descriptions (why it was rejected; ``status``, the ChangeStatus
    Description, says what) and one ``ProductionRequest`` whose ID is ``mes_order_id``,
    the MES's id of the order (taken), else the order id it read (an echo: no MES id).
    """
    root, data = _answer_start("AcknowledgeProductionSchedule", envelope, accepted, status)
    schedule = bod.add(data, "ProductionSchedule")
    if envelope is not None and envelope.noun_ids:
        bod.add(schedule, "ID", envelope.noun_ids[0])
    for note in notes:
        bod.add(schedule, "Description", note)
    request_id = mes_order_id or (order or {}).get("order_id")
    if request_id:
        bod.add(bod.add(schedule, "ProductionRequest"), "ID", request_id)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def confirm_bod(envelope, *, accepted, status=None, descriptions=(), notes=()):
    """The ``ConfirmBOD`` (bytes) that answers master data: Accepted or Rejected (its
    ChangeStatus Description saying why: ``status``), in the namespace of ``envelope``
    (V0600 for a bare document); its BOD holds ``descriptions`` (what the MES holds
    now) and ``notes`` (what is wrong)."""
    root, data = _answer_start("ConfirmBOD", envelope, accepted, status)
    element = bod.add(data, "BOD")
    for description in descriptions:
        bod.add(element, "Description", description)
    for note in notes:
        bod.add(element, "Note", note)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


class MaterialRefused(Exception):
    """The MES will not take a material (switch ``refuse_materials``): HTTP 422."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class _Handler(BaseHTTPRequestHandler):
    server_version = "MesSimulator/1"
    protocol_version = "HTTP/1.1"

    @property
    def sim(self):
        return self.server.simulator

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        _logger.info("%s %s", self.address_string(), format % args)

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self):
        """Read the whole body first, whatever the answer: the connection stays usable."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._raw = None
            return
        self._raw = self.rfile.read(length) if length else b""

    def _body(self):
        if self._raw is None:
            raise ValueError(f"body is over the limit of {MAX_BODY} bytes")
        try:
            return json.loads(self._raw or b"{}")
        except ValueError as err:
            raise ValueError(f"body is not JSON: {err}") from err

    def _authorized(self):
        key = self.sim.api_key
        if not key:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {key}".encode())

    def _dispatch(self, method):
        self._read_body()
        url = urlsplit(self.path)
        # Order references contain "/" (WH/MO/00001): clients send them percent-encoded.
        parts = [unquote(p) for p in url.path.split("/") if p]
        if parts[:2] != ["api", "v1"]:
            return self._send(404, {"error": f"no such path {url.path}"})
        parts = parts[2:]
        if parts == ["control"] and method == "POST":
            try:
                return self._control()
            except ValueError as err:
                return self._send(400, {"error": str(err)})
        if self.sim.delay:
            time.sleep(self.sim.delay)
        if self.sim.down:
            return self._send(503, {"error": "MES is down (simulated outage)"})
        if parts == ["health"]:
            return self._send(200, {"status": "ok"})
        if not self._authorized():
            return self._send(401, {"error": "missing or wrong API key"})
        try:
            return self._route(method, parts, parse_qs(url.query))
        except ValueError as err:
            return self._send(400, {"error": str(err)})

    def _route(self, method, parts, query):
        store = self.sim.store
        if parts == ["orders"] and method == "POST":
            return self._receive_order()
        if parts == ["orders"] and method == "GET":
            return self._send(
                200, {"orders": store.orders(status=(query.get("status") or [None])[0])}
            )
        if len(parts) == 2 and parts[0] == "orders" and method == "GET":
            order = store.order(parts[1])
            return self._send(200, order) if order else self._send(404, {"error": "no such order"})
        if len(parts) == 3 and parts[0] == "orders" and parts[2] == "run" and method == "POST":
            try:
                events = self.sim.run_order(parts[1])
            except LookupError as err:
                return self._send(404, {"error": str(err)})
            return self._send(200, {"events": events})
        if parts == ["master-data"] and method == "POST":
            return self._receive_master_data()
        if parts == ["master-data"] and method == "GET":
            kind = (query.get("kind") or [None])[0]
            if kind is not None and kind not in MASTER_DATA_KINDS:
                raise ValueError(f"kind: {kind!r} must be one of {', '.join(MASTER_DATA_KINDS)}")
            return self._send(200, {"items": store.master_data(kind)})
        if parts == ["materials"] and method == "POST":
            lots = self._body().get("lots") or {}
            if not isinstance(lots, dict):
                raise ValueError("lots: must map product codes to lists of lot numbers")
            self.sim.lots.update({str(k): [str(x) for x in v] for k, v in lots.items()})
            return self._send(200, {"lots": self.sim.lots})
        if parts == ["totals"] and method == "GET":
            events = [item["body"] for item in store.events(limit=10**9)]
            return self._send(200, {"orders": shopfloor.totals(events)})
        if len(parts) == 3 and parts[0] == "orders" and parts[2] == "complete" and method == "POST":
            quantity = self._body().get("quantity")
            if quantity is not None and (
                isinstance(quantity, bool) or not isinstance(quantity, int | float) or quantity <= 0
            ):
                raise ValueError(f"quantity: {quantity!r} must be a number greater than 0")
            try:
                event = self.sim.complete_order(parts[1], quantity)
            except LookupError as err:
                return self._send(404, {"error": str(err)})
            return self._send(200, {"event": event})
        if len(parts) == 3 and parts[0] == "resources" and parts[2] == "status":
            if method != "PUT":
                return self._send(405, {"error": "use PUT"})
            return self._resource_status(parts[1])
        if parts == ["resources"] and method == "GET":
            return self._send(200, {"resources": store.resources()})
        if parts == ["events"] and method == "GET":
            after = int((query.get("after") or ["0"])[0])
            limit = min(int((query.get("limit") or ["1000"])[0]), 5000)
            return self._send(200, {"events": store.events(after=after, limit=limit)})
        return self._send(404, {"error": f"no such path /api/v1/{'/'.join(parts)}"})

    def _xml_request(self):
        return (self.headers.get("Content-Type") or "").split(";")[0].strip() in XML_TYPES

    def _send_xml(self, status, data):
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _receive_order(self):
        xml = self._xml_request()
        in_bod = xml and self.sim.answer == "bod"
        envelope = order = None

        def refuse(status, payload, notes=()):
            """Answer a refusal: ``payload`` in JSON, or a Rejected Acknowledge whose
            ChangeStatus says ``payload``'s error (and reason), ``notes`` as notes."""
            if not in_bod:
                return self._send(status, payload)
            head = payload["error"] + (f": {payload['reason']}" if payload.get("reason") else "")
            return self._send_xml(
                status,
                acknowledge_schedule(
                    envelope, accepted=False, order=order, status=head, notes=notes
                ),
            )

        key = self.headers.get("Idempotency-Key")
        if not key:
            return refuse(400, {"error": "the Idempotency-Key header is required"})
        if xml:
            try:
                order, envelope = read_production_schedule(self._raw or b"")
            except MessageValidationError as err:
                envelope = getattr(err, "envelope", None)
                return refuse(
                    422,
                    {
                        "error": "order is not valid B2MML",
                        "errors": [e.as_dict() for e in err.errors],
                    },
                    [str(e) for e in err.errors],
                )
            errors = []
        else:
            order = self._body()
            errors = validation_errors(order, "order.v1.json")
        if errors:
            return self._send(
                422, {"error": "order is not valid", "errors": [e.as_dict() for e in errors]}
            )
        # A redelivery is answered as before; a cancellation goes whatever it names.
        if (
            self.sim.strict
            and order["action"] != "cancel"
            and not self.sim.store.order_receipt(key)
        ):
            unknown = self.sim.unknown_master_data(order)
            if unknown:
                named = dict.fromkeys(f"{kind} {error.value}" for kind, error in unknown)
                return refuse(
                    422,
                    {
                        "error": "order names master data unknown to the MES",
                        "reason": ", ".join(named),
                        "errors": [error.as_dict() for _kind, error in unknown],
                    },
                    [str(error) for _kind, error in unknown],
                )
        try:
            mes_order_id, created = self.sim.store.receive_order(order, key)
        except RevisionConflict as err:
            return refuse(409, {"error": "revision out of order", "reason": str(err)})
        if created:
            self.sim.order_received(mes_order_id)
        if self.sim.async_ack:
            # An MES that queues orders: it says "taken", its id comes with its reports.
            if in_bod:
                return self._send_xml(
                    202, acknowledge_schedule(envelope, accepted=True, order=order)
                )
            return self._send(202, {"status": "accepted"})
        status = 201 if created else 200
        if in_bod:
            return self._send_xml(
                status,
                acknowledge_schedule(
                    envelope, accepted=True, order=order, mes_order_id=mes_order_id
                ),
            )
        return self._send(
            status,
            {"status": "created" if created else "duplicate", "mes_order_id": mes_order_id},
        )

    def _receive_master_data(self):
        xml = self._xml_request()
        in_bod = xml and self.sim.answer == "bod"
        envelope = None

        def refuse(status, payload, notes=()):
            """Answer a refusal: ``payload`` in JSON, or a Rejected ConfirmBOD whose
            ChangeStatus says ``payload``'s error (and reason), ``notes`` as notes."""
            if not in_bod:
                return self._send(status, payload)
            head = payload["error"] + (f": {payload['reason']}" if payload.get("reason") else "")
            return self._send_xml(
                status, confirm_bod(envelope, accepted=False, status=head, notes=notes)
            )

        key = self.headers.get("Idempotency-Key")
        if not key:
            return refuse(400, {"error": "the Idempotency-Key header is required"})
        if xml:
            if self._raw is None:
                raise ValueError(f"body is over the limit of {MAX_BODY} bytes")
            try:
                documents, envelope = read_master_data(self._raw)
            except MessageValidationError as err:
                envelope = getattr(err, "envelope", None)
                return refuse(
                    422,
                    {
                        "error": "master data is not valid B2MML",
                        "errors": [e.as_dict() for e in err.errors],
                    },
                    [str(e) for e in err.errors],
                )
        else:
            document = self._body()
            errors = master_data_errors(document)
            if errors:
                return self._send(
                    422,
                    {"error": "master data is not valid", "errors": [e.as_dict() for e in errors]},
                )
            documents = [document]
        records = []
        for number, document in enumerate(documents, 1):
            kind, code = master_data_identity(document)
            if any((kind, code) == (k, c) for k, c, _d in records):
                error = FieldError(
                    f"(record {number})",
                    f"{kind} {code}",
                    "is carried twice: a document carries a record once",
                )
                return refuse(
                    422,
                    {"error": "master data is not valid", "errors": [error.as_dict()]},
                    [str(error)],
                )
            records.append((kind, code, document))
        try:
            answers = self.sim.store.receive_master_data(
                records, key, check=self.sim.refuse_master_data
            )
        except MaterialRefused as err:
            return refuse(422, {"error": "material refused", "reason": err.reason})
        except StaleRevision as err:
            return refuse(409, {"error": "stale revision", "reason": str(err)})
        answer = dict(answers[0])
        if len(answers) > 1:
            answer["items"] = answers
        status = 200 if answer["status"] == "duplicate" else 201
        if in_bod:
            held = [
                f"{item['kind']} {item['code']} revision {item['revision']}: {item['status']}"
                for item in answers
            ]
            return self._send_xml(status, confirm_bod(envelope, accepted=True, descriptions=held))
        return self._send(status, answer)

    def _resource_status(self, resource):
        key = self.headers.get("Idempotency-Key")
        if not key:
            return self._send(400, {"error": "the Idempotency-Key header is required"})
        body = self._body()
        status = body.get("status")
        if status not in ("blocked", "available"):
            raise ValueError(f"status: {status!r} must be 'blocked' or 'available'")
        created = self.sim.store.set_resource_status(
            resource,
            status,
            key,
            reason=body.get("reason"),
            since=body.get("since"),
            reference=body.get("reference"),
        )
        return self._send(
            200, {"status": "recorded" if created else "duplicate", "resource": resource}
        )

    def _control(self):
        body = self._body()
        sim = self.sim
        if "down" in body:
            sim.down = bool(body["down"])
        if "delay" in body:
            sim.delay = float(body["delay"] or 0)
        if "auto_complete" in body:
            sim.auto_complete = body["auto_complete"]
        if "async_ack" in body:
            sim.async_ack = bool(body["async_ack"])
        for switch in ("breakdown_every", "quality_fail_every", "partial_every", "rework_every"):
            if switch in body:
                value = body[switch]
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"{switch}: {value!r} must be a whole number, 0 or more")
                setattr(sim, switch, value)
        if "operators" in body:
            crew = body["operators"] or []
            if not isinstance(crew, list) or not all(isinstance(c, str) and c for c in crew):
                raise ValueError(f"operators: {crew!r} must be a list of operator badges")
            sim.operators = tuple(crew)
        if "answer" in body:
            if body["answer"] not in ANSWER_FORMATS:
                raise ValueError(
                    f"answer: {body['answer']!r} must be one of {', '.join(ANSWER_FORMATS)}"
                )
            sim.answer = body["answer"]
        if "strict" in body:
            if not isinstance(body["strict"], bool):
                raise ValueError(f"strict: {body['strict']!r} must be true or false")
            sim.strict = body["strict"]
        if "refuse_materials" in body:
            refused = body["refuse_materials"] or {}
            if not isinstance(refused, dict) or not all(
                isinstance(reason, str) for reason in refused.values()
            ):
                raise ValueError(
                    f"refuse_materials: {refused!r} must map material codes to the MES's reasons"
                )
            sim.refuse_materials = dict(refused)
        return self._send(
            200,
            {
                "down": sim.down,
                "delay": sim.delay,
                "auto_complete": sim.auto_complete,
                "strict": sim.strict,
                "refuse_materials": sim.refuse_materials,
                "answer": sim.answer,
            },
        )

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")


class SimulatorServer:
    """The simulator: HTTP server, event store and the worker that pushes events to Odoo."""

    def __init__(
        self,
        host="127.0.0.1",
        port=8070,
        store=None,
        api_key=None,
        odoo_url=None,
        backend_code=None,
        odoo_api_key=None,
        odoo_signing_secret=None,
        auto_complete=None,
        push_interval=1.0,
        lots=None,
        scrap_reasons=shopfloor.DEFAULT_SCRAP_REASONS,
        downtime_reasons=shopfloor.DEFAULT_DOWNTIME_REASONS,
        report="json",
        strict=False,
        refuse_materials=None,
        answer="json",
    ):
        if report not in REPORT_FORMATS:
            raise ValueError(f"report must be one of {', '.join(REPORT_FORMATS)}, got {report!r}")
        if answer not in ANSWER_FORMATS:
            raise ValueError(f"answer must be one of {', '.join(ANSWER_FORMATS)}, got {answer!r}")
        self.report = report
        # How orders and master data sent in B2MML are answered: JSON, or a BOD.
        self.answer = answer
        # Strict: orders must name master data the MES holds, active (an MES that
        # plans from its own master data). refuse_materials: {code: reason} it refuses.
        self.strict = strict
        self.refuse_materials = dict(refuse_materials or {})
        self.store = store or Store()
        self.api_key = api_key
        self.down = False
        self.delay = 0.0
        self.async_ack = False
        self.auto_complete = auto_complete
        self.breakdown_every = 0
        self.quality_fail_every = 0
        # Shift mode: every n-th run in two shifts (a partial confirmation first), every
        # n-th run with a unit sent to rework (reworked good, then scrapped, in turn).
        self.partial_every = 0
        self.rework_every = 0
        self.reworks = 0
        self.used_serials = set()
        self.operators = ()
        self.runs = 0
        self._runs_lock = threading.Lock()
        self.push_interval = push_interval
        self.lots = dict(lots or {})
        self.scrap_reasons = tuple(scrap_reasons)
        self.downtime_reasons = tuple(downtime_reasons)
        self.intake = (
            OdooIntakeClient(
                odoo_url,
                backend_code,
                odoo_api_key,
                signing_secret=odoo_signing_secret,
                timeout=(5, 60),
            )
            if odoo_url
            else None
        )
        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.simulator = self
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads = []

    @property
    def url(self):
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        """Serve and push in background threads; returns self."""
        self._spawn(self.httpd.serve_forever, "http")
        if self.intake:
            self._spawn(self._push_loop, "push")
        return self

    def _spawn(self, target, name):
        thread = threading.Thread(target=target, name=f"mes-simulator-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self):
        self._stop.set()
        self._wake.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=10)

    # master data

    def refuse_master_data(self, records):
        """Raise :class:`MaterialRefused` for the first material of ``records``
        (``[(kind, code, document)]``) the MES refuses."""
        refused = self.refuse_materials
        for kind, code, _document in records:
            if kind == "material" and code in refused:
                raise MaterialRefused(refused[code])

    def unknown_master_data(self, order):
        """``[(kind, FieldError)]``: the materials (product, components, by-products) and
        equipment (operations' resources) of ``order`` the MES does not hold active."""
        named = [("product.code", "material", order["product"]["code"])]
        for key in ("components", "byproducts"):
            for index, material in enumerate(order.get(key) or []):
                code = material["product"]["code"]
                named.append((f"{key}[{index}].product.code", "material", code))
        for index, operation in enumerate(order.get("operations") or []):
            named.append((f"operations[{index}].resource", "equipment", operation["resource"]))
        held = {
            kind: self.store.master_data_states(kind, [c for _f, k, c in named if k == kind])
            for kind in ("material", "equipment")
        }
        unknown = []
        for field, kind, code in named:
            state = held[kind].get(code)
            if state is None:
                reason = f"is unknown to the MES: send its {kind} master first"
            elif not state[1]:
                reason = (
                    f"is inactive in the MES (its {kind} master, revision {state[0]}, says so): "
                    "send an active revision first"
                )
            else:
                continue
            unknown.append((kind, FieldError(field, code, reason)))
        return unknown

    def usable_lots(self):
        """{product: [lot, ...]} the shop floor consumes: the released lots Odoo sent as
        master data (in the order first received), then those registered by hand
        (``lots``); a lot on hold never."""
        usable, held = {}, set()
        for product, lot, status in self.store.material_lots():
            if status == "released":
                usable.setdefault(product, []).append(lot)
            else:
                held.add((product, lot))
        for product, lots in self.lots.items():
            mine = usable.setdefault(product, [])
            mine.extend(lot for lot in lots if lot not in mine and (product, lot) not in held)
        return {product: lots for product, lots in usable.items() if lots}

    # the shop floor

    def order_received(self, mes_order_id):
        if self.auto_complete is not None:
            timer = threading.Timer(float(self.auto_complete), self._auto_complete, [mes_order_id])
            timer.daemon = True
            timer.start()

    def _auto_complete(self, mes_order_id):
        if self._stop.is_set():
            return
        order = self.store.order(mes_order_id)
        if order and order["status"] == "released":
            try:
                self.run_order(mes_order_id)
            except ValueError:
                _logger.exception("could not run order %s on the shop floor", mes_order_id)

    def _order(self, order_key):
        order = self.store.order(order_key)
        if not order:
            raise LookupError(f"no order {order_key!r} in the MES")
        return order

    def _emit(self, order, event_type, data):
        """Queue the order's next event for Odoo, numbered in the order's sequence."""
        mes_order_id = order["mes_order_id"]

        def make_event(number):
            return {
                "schema": EVENT_SCHEMA,
                "event_id": f"{mes_order_id}-E{number:04d}",
                "event_type": event_type,
                "order_ref": order["order_id"],
                "mes_order_id": mes_order_id,
                "sequence": number,
                "occurred_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "data": data,
            }

        return self.store.add_event(mes_order_id, make_event)

    @staticmethod
    def _every(every, number):
        """Forced on every ``every``-th run (and off on the others); None: left to chance."""
        return number % every == 0 if every else None

    def complete_order(self, order_key, quantity=None):
        """Only the final confirmation of an order, with its good quantity."""
        order = self._order(order_key)
        quantity = order["quantity"] if quantity is None else quantity
        event = self._emit(order, "order_completed", {"quantity": quantity, "uom": order["uom"]})
        self.store.set_order_status(order["mes_order_id"], "completed")
        self._wake.set()
        return event

    def run_order(self, order_key):
        """Run a whole order on the shop floor: start, downtime, operations, consumption
        by lot, scrap, output and final confirmation, all reported to Odoo in sequence."""
        order = self._order(order_key)
        if order["status"] != "released":
            raise LookupError(f"order {order_key!r} is {order['status']}, not released")
        with self._runs_lock:
            self.runs += 1
            number = self.runs
            rework = None
            if self.rework_every and number % self.rework_every == 0:
                rework = ("good", "scrapped")[self.reworks % 2]
                self.reworks += 1
            planned = shopfloor.run_order(
                order["payload"],
                self.usable_lots(),
                self.scrap_reasons,
                self.downtime_reasons,
                breakdown=self._every(self.breakdown_every, number),
                quality_fail=self._every(self.quality_fail_every, number),
                partial=bool(self.partial_every) and number % self.partial_every == 0,
                rework=rework,
                used_serials=self.used_serials,
                operators=self.operators,
            )
        events = [self._emit(order, event_type, data) for event_type, data in planned]
        self.store.set_order_status(order["mes_order_id"], "completed")
        self._wake.set()
        return events

    # delivery to Odoo

    def push_pending(self):
        """Deliver queued events to Odoo once; returns how many Odoo took."""
        if not self.intake:
            raise RuntimeError("the simulator has no Odoo URL to deliver events to")
        pending = self.store.undelivered()
        if not pending:
            return 0
        if self.report != "json":
            return self._push_documents(pending)
        try:
            results = self.intake.post_events([event for _seq, event in pending])
        except MesError as err:
            _logger.warning("could not deliver %d event(s) to Odoo: %s", len(pending), err)
            self.store.mark_failed([seq for seq, _e in pending], str(err))
            raise
        for (seq, _event), result in zip(pending, results, strict=True):
            self.store.mark_delivered(seq, result.get("status"))
        return len(pending)

    def _push_documents(self, pending):
        """Deliver queued events as B2MML, one ProductionPerformance per order (in its
        Sync transaction with ``b2mml-bod``), its ID the order's first queued event."""
        by_order = {}
        for seq, event in pending:
            by_order.setdefault(event.get("mes_order_id") or event.get("order_ref"), []).append(
                (seq, event)
            )
        for items in by_order.values():
            events = [event for _seq, event in items]
            document_id = events[0]["event_id"]
            now = datetime.now(UTC).replace(microsecond=0)
            xml = b2mml.events_to_production_performance(
                events, document_id=document_id, published_at=now
            )
            if self.report == "b2mml-bod":
                xml = bod.wrap(xml, "Sync", sender="MES-SIMULATOR", bod_id=document_id, created=now)
            try:
                answer = self.intake.post_document(xml)
            except MesError as err:
                _logger.warning("could not deliver document %s to Odoo: %s", document_id, err)
                self.store.mark_failed([seq for seq, _e in items], str(err))
                raise
            for seq, _event in items:
                self.store.mark_delivered(seq, answer.get("status"))
        return len(pending)

    def _push_loop(self):
        backoff = self.push_interval
        while not self._stop.is_set():
            self._wake.wait(backoff)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                while self.push_pending():
                    pass
            except Exception as err:  # keep delivering whatever one answer looked like
                if not isinstance(err, MesError):
                    _logger.exception("event delivery to Odoo failed")
                backoff = min(max(backoff * 2, 1.0), 30.0)
            else:
                backoff = self.push_interval
