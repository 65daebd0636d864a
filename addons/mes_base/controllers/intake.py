import json
import logging
from importlib import resources

from odoo import http
from odoo.http import request

from mes_connector.validation import MISSING, FieldError

_logger = logging.getLogger(__name__)

MAX_BODY = 5 * 1024 * 1024
MAX_BATCH = 500
PUBLISHED = ("openapi.json", "event.v1.json")
XML_TYPES = ("application/xml", "text/xml")


class MesIntakeController(http.Controller):
    """Where the MES posts what the shop floor did.

    ``POST /mes/api/v1/<backend code>/events`` with ``Authorization: Bearer <key>``
    (or ``X-API-Key``) and a JSON body: one event, or ``{"events": [...]}``.
    Every message is committed before the answer leaves, so a success answer
    means Odoo has it; if storing fails the MES gets a 5xx and sends again.
    """

    @http.route(
        "/mes/api/v1/<string:backend_code>/events",
        type="http",
        auth="none",
        methods=["POST"],
        csrf=False,
        save_session=False,
        readonly=False,
    )
    def events(self, backend_code, **_kw):
        backend = self._authenticate(backend_code)
        if not backend:
            return self._answer(401, {"error": "missing or wrong API key for this MES backend"})
        httprequest = request.httprequest
        if (httprequest.content_length or 0) > MAX_BODY:
            return self._answer(
                413, {"error": f"body larger than {MAX_BODY} bytes; send smaller batches"}
            )
        body = httprequest.get_data(cache=False)
        raw = body.decode("utf-8", errors="backslashreplace")
        messages = request.env["mes.message"].sudo()
        content_type = (httprequest.mimetype or "application/json").lower()
        if content_type in XML_TYPES:
            answer = messages._intake_b2mml(backend, body)
            status = {"accepted": 200, "duplicate": 200}.get(answer["status"], 422)
            return self._answer(status, answer)
        if content_type not in ("application/json", "text/json"):
            error = FieldError(
                "Content-Type", content_type, "is not supported: send application/json"
            )
            return self._reject(415, messages, backend, raw, "unsupported_format", error)
        try:
            decoded = json.loads(body)
        except ValueError as err:
            error = FieldError("(body)", MISSING, f"is not valid JSON ({err})")
            return self._reject(400, messages, backend, raw, "invalid_json", error)
        if isinstance(decoded, dict) and "events" in decoded:
            events = decoded["events"]
            if not isinstance(events, list) or not 0 < len(events) <= MAX_BATCH:
                error = FieldError("events", MISSING, f"must be a list of 1 to {MAX_BATCH} events")
                return self._reject(400, messages, backend, raw, "invalid_batch", error)
            results = [
                messages._intake(backend, json.dumps(event, ensure_ascii=False), event)
                for event in events
            ]
            return self._answer(200, {"results": results})
        answer = messages._intake(backend, raw, decoded)
        status = {"accepted": 202, "duplicate": 200}.get(answer["status"], 422)
        return self._answer(status, answer)

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
        body = resources.files("mes_connector").joinpath("schemas", name).read_bytes()
        return request.make_response(body, headers=[("Content-Type", "application/json")])

    def _authenticate(self, backend_code):
        headers = request.httprequest.headers
        key = headers.get("X-API-Key")
        authorization = headers.get("Authorization", "")
        if not key and authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        backend = request.env["mes.backend"].sudo().search([("code", "=", backend_code)], limit=1)
        if backend and backend._check_inbound_key(key):
            return backend
        _logger.warning(
            "MES intake: refused a call for backend %r from %s",
            backend_code,
            request.httprequest.remote_addr,
        )
        return None

    def _reject(self, status, messages, backend, raw, code, error):
        """Keep a body that is not even a readable message, and say why it was refused."""
        return self._answer(status, messages._intake(backend, raw, None, rejection=(code, [error])))

    def _answer(self, status, body):
        return request.make_json_response(body, status=status)
