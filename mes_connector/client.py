"""HTTP clients: Odoo -> MES (:class:`MesClient`) and MES -> Odoo (:class:`OdooIntakeClient`).

Every call has a connect and a read timeout. Errors are split by what the
caller should do: :class:`MesPermanentError` (fix the data or configuration)
or :class:`MesTransientError` (try again later). Credentials are sent in
headers only and never appear in messages, reprs or logs.

An MES that speaks B2MML may answer an order or master data delivery (HTTP 2xx or
4xx) with a BOD instead of JSON: an ``Acknowledge<Noun>`` (or ``Respond<Noun>``) or a
``ConfirmBOD``, in the V0401, V0500 or V0600 namespace (see :meth:`MesClient.send_order`).
"""

import json
import logging
from dataclasses import dataclass
from urllib.parse import quote

import requests

from . import bod
from .b2mml import B2MML_NAMESPACES, _parse
from .exceptions import MesAuthError, MesRejectedError, MessageValidationError, MesTransientError
from .signing import sign_headers

_logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5.0, 30.0)
# Answers that mean "not now" rather than "not this".
_TRANSIENT_STATUSES = {408, 425, 429}
_MAX_REASON = 500
XML_TYPES = ("application/xml", "text/xml")
# An answer is short: a larger XML answer is not read.
MAX_ANSWER_BYTES = 1024 * 1024
# At most this much of an XML body the client cannot take as an answer is shown.
_MAX_SHOWN = 200


def _short(text, limit=_MAX_SHOWN):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_xml(response):
    """Whether an answer is XML: its Content-Type says so, or its body starts with "<"
    (an HTML page is not read as XML, a JSON body is read as JSON whatever its type)."""
    head = response.content[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith((b"{", b"[")):
        return False
    content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type in XML_TYPES or content_type.endswith("+xml"):
        return True
    if content_type == "text/html":
        return False
    return head.startswith(b"<")


def _xml_answer(response):
    """``(answer, problem)``: the :class:`~mes_connector.bod.Answer` of an XML body, or
    None and a short, safe sentence saying why there is none (read once per response).

    The body is parsed as B2MML documents are (no DTD, no entity, at most
    :data:`MAX_ANSWER_BYTES`); a document that is no answer is described by its root
    element and the start of its text, never more than :data:`_MAX_SHOWN` characters.
    """
    cached = getattr(response, "_mes_xml_answer", None)
    if cached is not None:
        return cached
    try:
        root = _parse(response.content, MAX_ANSWER_BYTES)
    except MessageValidationError as err:
        result = None, f"XML that cannot be read safely: {_short(err.errors[0])}"
    else:
        answer = bod.read_answer(root, B2MML_NAMESPACES)
        if answer is None:
            text = _short(" ".join(root.itertext()), 120)
            result = (
                None,
                _short(
                    "XML that is no B2MML answer (Acknowledge, Respond or ConfirmBOD): "
                    f"<{_local_name(root)}>" + (f" {text}" if text else "")
                ),
            )
        else:
            result = answer, None
    response._mes_xml_answer = result
    return result


def _local_name(element):
    """The local name of an element, short."""
    tag = element.tag if isinstance(element.tag, str) else ""
    return _short(tag.rpartition("}")[2], 60)


def _answer_reason(answer):
    """What a B2MML answer says of itself: its notes, else its name and outcome."""
    if answer.notes:
        return "; ".join(answer.notes)[:_MAX_REASON]
    return f"{answer.name} {answer.code or 'without an outcome'}, no reason given"


def _reason(response):
    """The MES's own explanation from an error answer, short enough to show a user."""
    if response.content and _is_xml(response):
        answer, problem = _xml_answer(response)
        return _answer_reason(answer) if answer is not None else problem
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
    else:
        if isinstance(body, dict):
            # "material refused: <the MES's reason>": the reason says what the error was.
            head = ": ".join(str(body[k]) for k in ("error", "reason") if body.get(k))
            parts = [head] if head else []
            parts += [str(body["message"])] if body.get("message") else []
            parts += [
                f"{e.get('field')}: {e.get('reason')}" if isinstance(e, dict) else str(e)
                for e in body.get("errors") or []
            ]
            text = "; ".join(parts) or json.dumps(body)
        else:
            text = json.dumps(body)
    return (text or response.reason or "")[:_MAX_REASON]


def _retry_after(response):
    value = response.headers.get("Retry-After")
    try:
        return max(0, int(value)) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class OrderAck:
    """The MES's answer to an order delivery.

    ``mes_order_id`` is None when the MES only took the order for later processing
    (HTTP 202, or a B2MML answer that names no MES order): it acknowledges it by
    reporting on it. ``body`` is the MES's JSON answer or, for a B2MML answer, what it
    said: ``{"status": "accepted" | "modified", "answer": <its root element>, "code":
    <its actionCode>, "bod_id", "notes": [...], "mes_order_id"}``.
    """

    mes_order_id: str | None
    duplicate: bool
    body: dict


@dataclass(frozen=True)
class MasterDataAck:
    """The MES's answer to a master data delivery: ``body`` names the kind, code and
    revision it holds (``status`` created, updated or duplicate), or, for a B2MML
    answer, says what it said (as :attr:`OrderAck.body` does, without ``mes_order_id``)."""

    duplicate: bool
    body: dict


class _HttpClient:
    """Shared transport: one ``requests.Session``, timeouts, error classification."""

    peer = "server"

    def __init__(self, base_url, api_key=None, timeout=DEFAULT_TIMEOUT, verify=True, session=None):
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.verify = verify
        self._api_key = api_key

    def __repr__(self):
        return f"<{type(self).__name__} {self.base_url}>"

    def _headers(self, extra=None):
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        headers.update(extra or {})
        return headers

    def _request(
        self, method, path, *, json_body=None, data=None, headers=None, params=None, check=True
    ):
        url = f"{self.base_url}{path}"
        try:
            response = self.session.request(
                method,
                url,
                json=json_body,
                data=data,
                params=params,
                headers=self._headers(headers),
                timeout=self.timeout,
            )
        except requests.Timeout as err:
            raise MesTransientError(
                f"{self.peer} at {self.base_url} did not answer in time"
            ) from err
        except requests.ConnectionError as err:
            raise MesTransientError(
                f"{self.peer} at {self.base_url} is not reachable (connection failed)"
            ) from err
        except requests.RequestException as err:
            raise MesTransientError(
                f"call to {self.peer} at {self.base_url} failed: {err}"
            ) from err
        _logger.debug("%s %s -> %s", method, url, response.status_code)
        if check:
            self._raise_for_status(response)
        return response

    def _raise_for_status(self, response):
        status = response.status_code
        if status < 400:
            return
        reason = _reason(response)
        if status in (401, 403):
            raise MesAuthError(
                f"{self.peer} refused the credentials (HTTP {status}): {reason}",
                status=status,
                reason=reason,
            )
        if status >= 500 or status in _TRANSIENT_STATUSES:
            raise MesTransientError(
                f"{self.peer} could not handle the call now (HTTP {status}): {reason}",
                status=status,
                retry_after=_retry_after(response),
            )
        raise MesRejectedError(
            f"{self.peer} rejected the message (HTTP {status}): {reason}",
            status=status,
            reason=reason,
        )

    # Statuses whose XML answer is read: what the answer says decides (the others are
    # decided by the status: credentials, "not now", the MES's own failure).
    @staticmethod
    def _reads_answer(status):
        return 200 <= status < 300 or (
            400 <= status < 500 and status not in (401, 403) and status not in _TRANSIENT_STATUSES
        )

    def _b2mml_answer(self, response, what):
        """The B2MML answer (Accepted or Modified) of a delivery of ``what`` ("order",
        "master data"), or None for an answer that is not XML or whose status decides.

        Rejected (an Acknowledge, Respond or ConfirmBOD), a BODFailureMessage or a
        PartialBODFailureMessage raise :class:`MesRejectedError` with the MES's notes
        (``status``: the HTTP status when 4xx). XML that is no answer, cannot be read
        safely or says no outcome raises :class:`MesTransientError` after a 2xx, and is
        refused as any 4xx (:class:`MesRejectedError`) after a 4xx.
        """
        status = response.status_code
        if not self._reads_answer(status) or not response.content or not _is_xml(response):
            return None
        answer, problem = _xml_answer(response)
        outcome = answer.outcome if answer is not None else None
        if outcome in ("accepted", "modified"):
            return answer
        if outcome in ("rejected", "partial"):
            reason = _answer_reason(answer)
            said = f"{answer.name} {answer.code}, HTTP {status}"
            raise MesRejectedError(
                f"{self.peer} rejected the {what} ({said}): {reason}"
                if outcome == "rejected"
                else f"{self.peer} took only part of the {what} ({said}); what failed: {reason}",
                status=status if status >= 400 else None,
                reason=reason,
            )
        if status >= 400:
            self._raise_for_status(response)
        if answer is None:
            raise MesTransientError(f"answer is {problem} (HTTP {status})", status=status)
        raise MesTransientError(
            f"answer {answer.name} (HTTP {status}) says neither Accepted, Modified nor "
            f"Rejected: {_short(answer.code or 'no actionCode')}",
            status=status,
        )

    @staticmethod
    def _json(response):
        try:
            body = response.json()
        except ValueError as err:
            raise MesTransientError(
                f"answer is not JSON (HTTP {response.status_code})", status=response.status_code
            ) from err
        return body


class MesClient(_HttpClient):
    """What Odoo calls on the MES."""

    peer = "MES"

    def health(self):
        return self._json(self._request("GET", "/api/v1/health"))

    def send_order(self, order, idempotency_key):
        """Deliver one order revision; a redelivery with the same key is a no-op at the MES.

        The MES answers in JSON (``{"status", "mes_order_id"}``) or, if it speaks
        B2MML, with a BOD (HTTP 2xx or 4xx):

        - an ``Acknowledge<Noun>`` or ``Respond<Noun>`` whose ResponseCriteria say
          (ResponseExpression's actionCode, else ChangeStatus/Code) Accepted or
          Modified is an :class:`OrderAck`. Its MES order id is the ``ID`` of the one
          ``ProductionRequest`` of the acknowledged ``ProductionSchedule`` when that ID
          is not the order id Odoo sent (Odoo writes its order id as
          ``ProductionRequest/ID``; an MES that keeps it echoes it): an echo, no or
          several ProductionRequests, or another noun give ``mes_order_id`` None
          (taken; acknowledged when the MES reports on it). Rejected raises
          :class:`MesRejectedError` with the MES's notes (ChangeStatus Description
          and Reasons, the noun's Descriptions and Notes);
        - a ``ConfirmBOD`` that says Accepted (or holds a BODSuccessMessage) is an
          :class:`OrderAck` without MES order id; Rejected, a BODFailureMessage or a
          PartialBODFailureMessage raise :class:`MesRejectedError` naming what failed
          (its Descriptions and Notes, those of its ErrorProcessMessages);
        - other XML, XML that cannot be read safely (a DTD, entities, over
          :data:`MAX_ANSWER_BYTES`) or an answer without an outcome raise
          :class:`MesTransientError` after a 2xx (as a 2xx that is not JSON does) and
          :class:`MesRejectedError` after a 4xx; an HTTP 5xx is transient whatever
          its body.
        """
        return self._deliver_order(
            {"json_body": order},
            "application/json",
            idempotency_key,
            lambda: order.get("order_id") if isinstance(order, dict) else None,
        )

    def send_order_xml(self, document, idempotency_key):
        """Deliver one order revision as a B2MML document (bytes); answered as
        :meth:`send_order` says."""
        return self._deliver_order(
            {"data": document},
            "application/xml",
            idempotency_key,
            lambda: _request_id_of(document),
        )

    def _deliver(self, path, what, body, content_type, idempotency_key):
        """POST one revision with its key: (the response, its B2MML answer or None)."""
        if not idempotency_key:
            raise ValueError("idempotency_key is required")
        response = self._request(
            "POST",
            path,
            headers=_delivery_headers(idempotency_key, content_type),
            check=False,
            **body,
        )
        return response, self._b2mml_answer(response, what)

    def _deliver_order(self, body, content_type, idempotency_key, sent_order_id):
        response, answer = self._deliver(
            "/api/v1/orders", "order", body, content_type, idempotency_key
        )
        if answer is not None:
            mes_order_id = answer.mes_order_id(sent_order_id())
            return OrderAck(
                mes_order_id=mes_order_id,
                duplicate=False,
                body=_answer_body(answer, mes_order_id=mes_order_id),
            )
        self._raise_for_status(response)
        body = self._json(response)
        mes_order_id = body.get("mes_order_id") if isinstance(body, dict) else None
        if not mes_order_id and response.status_code == 202:
            return OrderAck(mes_order_id=None, duplicate=False, body=body)
        if not mes_order_id:
            raise MesTransientError(
                f"MES accepted the order but its answer has no mes_order_id: {body!r:.200}"
            )
        return OrderAck(
            mes_order_id=str(mes_order_id), duplicate=body.get("status") == "duplicate", body=body
        )

    def send_master_data(self, document, idempotency_key):
        """Deliver one master data revision (a ``mes.*`` document of
        :mod:`~mes_connector.master_data`); a redelivery with the same key is a no-op.

        A refusal (422: invalid, or the MES will not take the record) or a stale
        revision (409) raises :class:`MesRejectedError` with the MES's reason.
        """
        return self._deliver_master_data(
            {"json_body": document}, "application/json", idempotency_key
        )

    def send_master_data_xml(self, document, idempotency_key):
        """Deliver one master data revision as a B2MML document (bytes).

        A B2MML answer is read as :meth:`send_order` reads one (an Acknowledge or a
        ConfirmBOD, with no MES order id to find).
        """
        return self._deliver_master_data({"data": document}, "application/xml", idempotency_key)

    def _deliver_master_data(self, body, content_type, idempotency_key):
        response, b2mml_answer = self._deliver(
            "/api/v1/master-data", "master data", body, content_type, idempotency_key
        )
        if b2mml_answer is not None:
            return MasterDataAck(duplicate=False, body=_answer_body(b2mml_answer))
        self._raise_for_status(response)
        answer = self._json(response)
        if not isinstance(answer, dict):
            # Not what an MES that took the record says: try again rather than trust it.
            raise MesTransientError(
                f"MES answered the master data without a JSON object: {answer!r:.200}",
                status=response.status_code,
            )
        return MasterDataAck(duplicate=answer.get("status") == "duplicate", body=answer)

    def send_resource_status(self, resource, status, idempotency_key, **details):
        """Tell the MES a resource is ``blocked`` (under maintenance in Odoo) or ``available``
        again; ``details``: reason, since (ISO 8601), reference. Idempotent by key."""
        if status not in ("blocked", "available"):
            raise ValueError(f"status must be 'blocked' or 'available', got {status!r}")
        if not idempotency_key:
            raise ValueError("idempotency_key is required")
        response = self._request(
            "PUT",
            f"/api/v1/resources/{quote(resource, safe='')}/status",
            json_body={"schema": "mes.resource_status/1", "status": status, **details},
            headers={"Idempotency-Key": idempotency_key},
        )
        return self._json(response)

    def fetch_events(self, after=0, limit=500):
        """Pull mode: the events of the MES's feed after position ``after``, oldest first.

        Each item is ``{"seq": <position>, "body": <event>}``.
        """
        response = self._request("GET", "/api/v1/events", params={"after": after, "limit": limit})
        body = self._json(response)
        events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list):
            raise MesTransientError(f"MES event feed answer has no event list: {body!r:.200}")
        return [{"seq": item["seq"], "body": item["body"]} for item in events]


def _delivery_headers(idempotency_key, content_type):
    headers = {"Idempotency-Key": idempotency_key, "Content-Type": content_type}
    if content_type != "application/json":
        # A B2MML delivery may be answered in B2MML: JSON is still preferred.
        headers["Accept"] = "application/json, application/xml;q=0.9, text/xml;q=0.8"
    return headers


def _answer_body(answer, **extra):
    """An :class:`OrderAck` or :class:`MasterDataAck` body for a B2MML answer."""
    return {
        "status": answer.outcome,
        "answer": answer.name,
        "code": answer.code,
        "bod_id": answer.bod_id,
        "notes": list(answer.notes),
        **extra,
    }


def _request_id_of(document):
    """The ``ProductionRequest/ID`` of a B2MML order Odoo sends (bare or in its BOD):
    the order id. None when it cannot be read."""
    if not isinstance(document, bytes | bytearray):
        return None
    try:
        root = _parse(document, len(document))  # Odoo's own document: no limit of its own
    except MessageValidationError:
        return None
    for element in root.iter("{*}ProductionRequest"):
        identifier = element.find("{*}ID")
        if identifier is not None and (identifier.text or "").strip():
            return identifier.text.strip()
    return None


class OdooIntakeClient(_HttpClient):
    """What an MES calls on Odoo: the intake endpoint of one MES backend."""

    peer = "Odoo"

    def __init__(self, base_url, backend_code, api_key, signing_secret=None, **kwargs):
        super().__init__(base_url, api_key=api_key, **kwargs)
        self.backend_code = backend_code
        self.signing_secret = signing_secret

    def _headers_for(self, body, content_type):
        """Content type, and the signature headers when the backend asks for signed requests."""
        headers = {"Content-Type": content_type}
        if self.signing_secret:
            headers.update(sign_headers(self.signing_secret, body))
        return headers

    @property
    def path(self):
        return f"/mes/api/v1/{self.backend_code}/events"

    def post_raw(self, body, content_type="application/json"):
        """POST bytes as they are; returns (HTTP status, decoded answer) whatever the status.

        Only transport failures raise (:class:`MesTransientError`), so a test or
        an MES can look at how Odoo answered a bad message.
        """
        response = self._request(
            "POST", self.path, data=body, headers=self._headers_for(body, content_type), check=False
        )
        try:
            answer = response.json()
        except ValueError:
            answer = {"error": response.text[:_MAX_REASON]}
        return response.status_code, answer

    def post_document(self, xml):
        """Send one B2MML document (bytes); returns Odoo's JSON answer (its status, and
        one result per event it read) or, for a transaction that asks for a B2MML
        answer, ``{"status": ..., "bod": <the answer's bytes>}``.

        Raises :class:`MesAuthError` on a refused key and :class:`MesTransientError`
        when Odoo could not store the document.
        """
        response = self._request(
            "POST",
            self.path,
            data=xml,
            headers=self._headers_for(xml, "application/xml"),
            check=False,
        )
        if response.status_code != 422:
            # Kept and refused (422) is an answer; anything else that failed is raised.
            self._raise_for_status(response)
        if response.headers.get("Content-Type", "").startswith("application/xml"):
            status = {200: "accepted", 202: "accepted"}.get(response.status_code, "rejected")
            return {"status": status, "bod": response.content}
        return self._json(response)

    def post_events(self, events):
        """Send a batch of event dicts; returns Odoo's answer per event.

        Raises :class:`MesAuthError` on a refused key and
        :class:`MesTransientError` when Odoo could not store the batch.
        """
        events = list(events)
        body = json.dumps({"events": events}).encode()
        response = self._request(
            "POST", self.path, data=body, headers=self._headers_for(body, "application/json")
        )
        answer = self._json(response)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(events):
            raise MesTransientError(
                f"Odoo's answer does not list one result per event: {answer!r:.200}",
                status=response.status_code,
            )
        return results
