import json
import logging
from importlib import resources

from odoo import http
from odoo.http import request

from mes_connector.exceptions import MessageValidationError
from mes_connector.openapi import openapi_document
from mes_connector.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER
from mes_connector.validation import MISSING, FieldError, decode_json_body

from ..exceptions import MesConcurrentDelivery
from ..models.ir_http import BODY_KEY, MAX_BODY

_logger = logging.getLogger(__name__)

MAX_BATCH = 500
PUBLISHED = ("openapi.json", "event.v1.json")
XML_TYPES = ("application/xml", "text/xml")
JSON_TYPES = ("application/json", "text/json")


class MesIntakeController(http.Controller):
    """Where the MES posts what the shop floor did.

    ``POST /mes/api/v1/<backend code>/events`` with ``Authorization: Bearer <key>``
    (or ``X-API-Key``) and a JSON body: one event, or ``{"events": [...]}``; or a B2MML
    ProductionPerformance document (``application/xml``). Every body that passes the key
    (and the signature, where the backend asks for one) is committed before the answer
    leaves, exactly as received, whatever it holds: a success or 4xx answer means Odoo
    has it; if storing fails the MES gets a 5xx and sends again. Each event of a batch
    is judged alone.
    """

    @http.route(
        "/mes/api/v1/<string:backend_code>/events",
        type="http",
        auth="none",
        methods=["POST"],
        csrf=False,
        save_session=False,
        readonly=False,
        mes_raw_body=True,
    )
    def events(self, backend_code, **_kw):
        backend = self._authenticate(backend_code)
        if not backend:
            return self._answer(401, {"error": "missing or wrong API key for this MES backend"})
        body = request.httprequest.environ.get(BODY_KEY)
        if body is None:
            # Refused before anything is read or stored: the MES keeps it and splits it.
            return self._answer(
                413, {"error": f"body larger than {MAX_BODY} bytes; send smaller batches"}
            )
        refusal = backend._check_signature(
            request.httprequest.headers.get(TIMESTAMP_HEADER),
            request.httprequest.headers.get(SIGNATURE_HEADER),
            body,
        )
        if refusal:
            _logger.warning("MES intake: backend %s refused a request: %s", backend.code, refusal)
            return self._answer(401, {"error": f"signature refused: {refusal}"})
        messages = request.env["mes.message"].sudo()
        content_type = (request.httprequest.mimetype or "application/json").lower()
        if content_type in XML_TYPES:
            return self._store(lambda: messages._intake_b2mml(backend, body), accepted=200)
        if content_type not in JSON_TYPES:
            error = FieldError(
                "Content-Type",
                content_type[:100],
                "is not supported: send application/json, or application/xml for B2MML",
            )
            return self._reject(415, messages, backend, body, "unsupported_format", [error])
        try:
            # Values a column cannot hold (NUL, 1e400, ...) are judged per event, below.
            decoded = decode_json_body(body, check_values=False)
        except MessageValidationError as err:
            return self._reject(400, messages, backend, body, "invalid_json", err.errors)
        if isinstance(decoded, dict) and "events" in decoded:
            events = decoded["events"]
            if not isinstance(events, list) or not 0 < len(events) <= MAX_BATCH:
                error = FieldError("events", MISSING, f"must be a list of 1 to {MAX_BATCH} events")
                return self._reject(400, messages, backend, body, "invalid_batch", [error])
            return self._store(lambda: {"results": messages._intake_batch(backend, events)})
        return self._store(lambda: messages._intake(backend, body, decoded))

    @http.route(
        ["/mes/api/v1/openapi.json", "/mes/api/v1/schemas/<string:name>"],
        type="http",
        auth="none",
        methods=["GET"],
        save_session=False,
    )
    def api_document(self, name="openapi.json", **_kw):
        """The OpenAPI document of this API and the JSON schemas it refers to."""
        if name not in PUBLISHED:
            return request.not_found()
        if name == "openapi.json":
            # Self-contained, one variant per event type: a contract generators can use.
            body = json.dumps(openapi_document(), indent=1).encode()
        else:
            body = resources.files("mes_connector").joinpath("schemas", name).read_bytes()
        return request.make_response(body, headers=[("Content-Type", "application/json")])

    def _authenticate(self, backend_code):
        headers = request.httprequest.headers
        key = headers.get("X-API-Key")
        authorization = headers.get("Authorization", "")
        if not key and authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        backend = request.env["mes.backend"].sudo()._authenticate(backend_code, key)
        if backend:
            return backend
        _logger.warning(
            "MES intake: refused a call for backend %r from %s",
            backend_code[:64],
            request.httprequest.remote_addr,
        )
        return None

    def _store(self, store, accepted=202):
        """Run ``store`` and answer what it says; a concurrent delivery of the same event
        rolls everything of this request back and asks the MES to send it again."""
        try:
            answer = store()
        except MesConcurrentDelivery as err:
            request.env.cr.rollback()
            return self._answer(
                503, {"error": f"send again: {err}"}, headers=[("Retry-After", "1")]
            )
        if "results" in answer and "status" not in answer:
            return self._answer(200, answer)
        status = {"accepted": accepted, "duplicate": 200}.get(answer["status"], 422)
        transaction_answer = answer.pop("bod", None)
        if transaction_answer:
            # The MES asked for a B2MML answer (an Acknowledge, a ConfirmBOD): it gets it,
            # with the status the JSON answer would have had.
            return request.make_response(
                transaction_answer,
                headers=[
                    ("Content-Type", "application/xml; charset=utf-8"),
                    ("Content-Length", str(len(transaction_answer))),
                    ("X-MES-Message-Id", str(answer.get("message_id", ""))),
                ],
                status=status,
            )
        return self._answer(status, answer)

    def _reject(self, status, messages, backend, body, code, errors):
        """Keep a body that is not even a readable message, and say why it was refused."""
        return self._answer(status, messages._intake(backend, body, None, rejection=(code, errors)))

    def _answer(self, status, body, headers=()):
        # ASCII-only, strict JSON (no NaN/Infinity) whatever the MES sent that is echoed back.
        data = json.dumps(body, ensure_ascii=True, allow_nan=False, default=str).encode()
        return request.make_response(
            data,
            headers=[
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
                *headers,
            ],
            status=status,
        )
