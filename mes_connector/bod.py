"""Business Object Documents: B2MML nouns as real MES send them.

MES rarely send a bare ``ProductionPerformance``: they wrap it in a transaction (an
OAGIS Business Object Document) such as ``SyncProductionPerformance``, whose
``ApplicationArea`` says who sent it, when, under which BODID, and whose ``DataArea``
holds the verb (``Sync``) and one or more nouns::

    <SyncProductionPerformance releaseID="1.0">
      <ApplicationArea>
        <Sender><LogicalID>MES-PLANT-7</LogicalID></Sender>
        <CreationDateTime>2026-11-30T14:05:09Z</CreationDateTime>
        <BODID>7c9e6679-7425-40de-944b-e07fc1f90ae7</BODID>
      </ApplicationArea>
      <DataArea><Sync/><ProductionPerformance>...</ProductionPerformance></DataArea>
    </SyncProductionPerformance>

:func:`unwrap` returns the nouns of a document, bare or wrapped, with its
:class:`Envelope`; the verbs are those of B2MML V0401, V0500 and V0600.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from .exceptions import MessageValidationError
from .validation import MISSING, FieldError

# The verbs of B2MML's transactions, as the schemas name their elements.
VERBS = ("Get", "Show", "Process", "Acknowledge", "Change", "Respond", "Cancel", "Sync")
# The verbs that answer a transaction with a noun: Acknowledge (a Process), Respond (a
# Change); any transaction may also be answered by a ConfirmBOD.
ANSWER_VERBS = ("Acknowledge", "Respond")


@dataclass(frozen=True)
class Envelope:
    """What a BOD says of itself: its verb, its sender, when and under which id."""

    verb: str
    noun: str
    namespace: str
    release_id: str | None
    sender: str | None
    created: datetime | None
    bod_id: str | None
    # Sender/ConfirmationCode: Always, OnError or Never (a ConfirmBOD is asked for).
    confirmation: str | None = None
    # The sender's ApplicationArea as it came, for the answer's OriginalApplicationArea.
    application_area: bytes | None = None
    # The IDs of the nouns it carried, to name them in an Acknowledge.
    noun_ids: tuple = ()


def unwrap(root, noun, namespaces, verbs=VERBS, read_datetime=None, refusals=None):
    """``(nouns, envelope)`` of ``root``: ``[root]`` and None for a bare ``noun``, or the
    nouns of a ``<Verb><noun>`` transaction in one of ``namespaces`` with its
    :class:`Envelope`. A verb not in ``verbs``, another document, or a transaction
    without its DataArea, verb or noun raises :class:`MessageValidationError` naming
    the element (``refusals`` maps a verb to what the refusal says of it).
    ``read_datetime(element, path)`` reads CreationDateTime (None or a datetime; it
    reports its own errors).
    """
    qname = etree.QName(root)
    if qname.namespace not in namespaces:
        raise _refused("(root)", root.tag, f"is not a {noun} of B2MML V0401, V0500 or V0600")
    if qname.localname == noun:
        return [root], None
    verb = next((v for v in VERBS if qname.localname == f"{v}{noun}"), None)
    if verb is None:
        raise _refused(
            "(root)",
            root.tag,
            f"is not a {noun} of B2MML V0401, V0500 or V0600, bare or in a transaction "
            f"({', '.join(v + noun for v in verbs)})",
        )
    if verb not in verbs:
        why = (refusals or {}).get(verb) or f"which this interface does not take for a {noun}"
        raise _refused(
            "(root)",
            qname.localname,
            f"is a {verb} transaction, {why} (it takes {', '.join(verbs)})",
        )
    ns = qname.namespace
    elements = {}
    for child in root:
        if isinstance(child.tag, str) and etree.QName(child).namespace == ns:
            elements.setdefault(etree.QName(child).localname, child)
    application = elements.get("ApplicationArea")
    # The envelope first: a transaction refused for its content is still answered.
    sender = created = bod_id = confirmation = original = None
    if application is not None:
        sender_element = _child(application, ns, "Sender")
        sender = _text(_child(sender_element, ns, "LogicalID"))
        confirmation = _text(_child(sender_element, ns, "ConfirmationCode"))
        bod_id = _text(_child(application, ns, "BODID"))
        original = etree.tostring(application)
        if read_datetime is not None:
            created = read_datetime(
                _child(application, ns, "CreationDateTime"), "ApplicationArea/CreationDateTime"
            )
    envelope = Envelope(
        verb=verb,
        noun=noun,
        namespace=ns,
        release_id=root.get("releaseID"),
        sender=sender,
        created=created,
        bod_id=bod_id,
        confirmation=confirmation,
        application_area=original,
    )
    data = elements.get("DataArea")
    if data is None:
        raise _refused(
            "DataArea", MISSING, f"is missing: a {qname.localname} carries its {noun}", envelope
        )
    errors = []
    nouns = []
    verb_seen = False
    counts = {}
    for child in data:
        if not isinstance(child.tag, str):
            continue
        child_name = etree.QName(child)
        counts[child_name.localname] = counts.get(child_name.localname, 0) + 1
        where = f"DataArea/{child_name.localname}[{counts[child_name.localname]}]"
        if child_name.namespace == ns and child_name.localname == verb and not verb_seen:
            verb_seen = True
        elif child_name.namespace == ns and child_name.localname == noun:
            nouns.append(child)
        elif child_name.namespace in namespaces:
            # Nothing the MES sends in B2MML is left unread: what is not this transaction's
            # verb or noun (another version's noun, a misspelling, a second verb) is named.
            errors.append(
                FieldError(
                    where,
                    child_name.namespace if child_name.localname == noun else MISSING,
                    f"is in another B2MML version than its {qname.localname}"
                    if child_name.localname == noun
                    else f"is not the {verb} or a {noun} of a {qname.localname}",
                )
            )
    if not verb_seen:
        errors.insert(0, FieldError(f"DataArea/{verb}", MISSING, "is missing"))
    if not nouns:
        errors.insert(
            1 if not verb_seen else 0, FieldError(f"DataArea/{noun}", MISSING, "is missing")
        )
    if errors:
        raise _refused_all(errors, envelope)
    return nouns, envelope


def answer(envelope, *, accepted, noun_ids=(), notes=(), sender="ODOO", bod_id, created):
    """The BOD that answers ``envelope``'s transaction, or None when it asks for none.

    A ``Process`` is answered by an ``Acknowledge`` of the same noun (Accepted or
    Rejected, with the ids of the nouns it carried); any other verb by a ``ConfirmBOD``
    when its sender asked for one (ConfirmationCode Always, or OnError and ``accepted``
    is false), its ``notes`` as the BOD's notes. The answer is in the namespace of the
    request, names Odoo as ``sender`` and carries the request's ApplicationArea as its
    OriginalApplicationArea.
    """
    if envelope is None:
        return None
    if envelope.verb == "Process":
        name = f"Acknowledge{envelope.noun}"
    elif envelope.confirmation == "Always" or (envelope.confirmation == "OnError" and not accepted):
        name = "ConfirmBOD"
    else:
        return None
    root, data = reply(
        name,
        namespace=envelope.namespace,
        accepted=accepted,
        sender=sender,
        bod_id=bod_id,
        created=created,
        envelope=envelope,
    )
    if name == "ConfirmBOD":
        bod = add(data, "BOD")
        for note in notes:
            add(bod, "Note", note)
    else:
        for noun_id in noun_ids or (None,):
            noun = add(data, envelope.noun)
            if noun_id:
                add(noun, "ID", noun_id)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def reply(
    name, *, namespace, accepted, sender, bod_id, created, envelope=None, status=None, reasons=()
):
    """``(root, data_area)``: the start of an answer BOD ``name`` (``Acknowledge<Noun>``,
    ``Respond<Noun>`` or ``ConfirmBOD``) in ``namespace``, for the caller to add its
    nouns (or ``BOD`` elements) to the DataArea.

    Its ApplicationArea names ``sender``, ``created`` and ``bod_id``; its verb carries
    the ApplicationArea of ``envelope`` (the request, when it came in a BOD) as its
    OriginalApplicationArea and one ResponseCriteria: a ResponseExpression whose
    actionCode is Accepted or Rejected (``accepted``), and, with a ``status`` (a
    sentence saying why) or ``reasons``, a ChangeStatus of that Code, Description
    and Reasons.
    """
    verb = next((v for v in ANSWER_VERBS if name.startswith(v)), "Confirm")
    root = etree.Element(etree.QName(namespace, name).text, nsmap={None: namespace})
    if name != "ConfirmBOD":  # the one BOD whose schema has no releaseID
        root.set("releaseID", (envelope.release_id if envelope else None) or "1.0")
    application = add(root, "ApplicationArea")
    add(add(application, "Sender"), "LogicalID", sender)
    add(application, "CreationDateTime", created.isoformat())
    add(application, "BODID", bod_id)
    data = add(root, "DataArea")
    verb_element = add(data, verb)
    original = _original(envelope, namespace) if envelope is not None else None
    if original is not None:
        verb_element.append(original)
    criteria = add(verb_element, "ResponseCriteria")
    code = "Accepted" if accepted else "Rejected"
    add(criteria, "ResponseExpression", actionCode=code)
    if status or reasons:
        change = add(criteria, "ChangeStatus")
        add(change, "Code", code)
        if status:
            add(change, "Description", status)
        for reason in reasons:
            add(change, "Reason", reason)
    return root, data


def add(parent, tag, text=None, **attrib):
    """A child ``tag`` of ``parent``, in the parent's namespace, with ``text``."""
    namespace = etree.QName(parent).namespace
    element = etree.SubElement(parent, etree.QName(namespace, tag).text, attrib)
    if text is not None:
        element.text = str(text)
    return element


# Larger ApplicationAreas (a sender's UserArea can hold anything) are not echoed back.
MAX_ORIGINAL_BYTES = 64 * 1024


def _original(envelope, ns):
    """The request's ApplicationArea, renamed OriginalApplicationArea."""
    if not envelope.application_area or len(envelope.application_area) > MAX_ORIGINAL_BYTES:
        return None
    original = etree.fromstring(envelope.application_area)
    original.tag = etree.QName(ns, "OriginalApplicationArea").text
    return original


# OAGIS 9: some MES answer with its own ConfirmBOD.
NS_OAGIS9 = "http://www.openapplications.org/oagis/9"
# An answer's notes, as a planner reads them: so many, so long at most.
MAX_NOTES = 20
MAX_NOTE_CHARS = 500
# Where an answer says why (ChangeStatus, OAGIS process messages, a noun's own text).
_NOTE_NAMES = ("Description", "ReasonCode", "Reason", "Note")


@dataclass(frozen=True)
class Answer:
    """What a receiver said of a transaction it was sent (see :func:`read_answer`).

    ``outcome`` is ``"accepted"``, ``"modified"`` (taken with changes), ``"rejected"``,
    ``"partial"`` (a ConfirmBOD's PartialBODFailureMessage: part of it failed) or None
    when the answer says none of them; ``code`` is what said it, as written (the
    actionCode ``Accepted``, ``BODFailureMessage``...). ``notes`` are its texts (why),
    ``request_ids`` the IDs of the acknowledged nouns' ``ProductionRequest`` elements.
    """

    name: str
    namespace: str
    noun: str | None
    outcome: str | None
    code: str | None = None
    notes: tuple = ()
    bod_id: str | None = None
    request_ids: tuple = ()

    def mes_order_id(self, order_id):
        """The receiver's id of the order ``order_id`` (the ``ProductionRequest/ID`` Odoo
        sent), or None when the answer gives none.

        The rule: an Accepted or Modified Acknowledge (or Respond) of a
        ``ProductionSchedule`` names the MES's order by the ``ID`` of the one
        ``ProductionRequest`` it holds, when that ID is not ``order_id``. An MES that
        echoes Odoo's request (its ID is Odoo's order id), that holds no or several
        ProductionRequests, another noun, a ConfirmBOD: no MES id.
        """
        if self.outcome not in ("accepted", "modified") or len(self.request_ids) != 1:
            return None
        request_id = self.request_ids[0]
        if not request_id or request_id == order_id:
            return None
        return request_id


def read_answer(root, namespaces):
    """The :class:`Answer` the document ``root`` (a parsed element) gives, or None when
    it is no answer: not an ``Acknowledge<Noun>``, ``Respond<Noun>`` or ``ConfirmBOD``
    of one of ``namespaces`` (a ConfirmBOD may also be OAGIS 9's).

    Its outcome is what its verb's ResponseCriteria say (ResponseExpression's
    actionCode, else ChangeStatus/Code: Accepted, Modified or Rejected; one Rejected
    rejects) or, in a ConfirmBOD, what its BODs hold: a BODFailureMessage rejects, a
    PartialBODFailureMessage is partial, a BODSuccessMessage accepts. Its notes, in this
    order: the ChangeStatus' Description, ReasonCode, Reason and state change texts, the
    Description and Note of OAGIS ErrorProcessMessages, a BOD's Description and Note, a
    noun's (and its ProductionRequests') Description and Note.
    """
    qname = etree.QName(root)
    ns, name = qname.namespace, qname.localname
    if name == "ConfirmBOD" and (ns in namespaces or ns == NS_OAGIS9):
        verb, noun = "Confirm", None
    elif ns in namespaces:
        verb = next((v for v in ANSWER_VERBS if name.startswith(v) and name != v), None)
        if verb is None:
            return None
        noun = name[len(verb) :]
    else:
        return None
    bod_id = _text(_child(_child(root, ns, "ApplicationArea"), ns, "BODID"))
    data = _child(root, ns, "DataArea")
    codes, notes = [], []
    verb_element = _child(data, ns, verb)
    if verb_element is not None:
        for criteria in verb_element.iterfind(etree.QName(ns, "ResponseCriteria").text):
            expression = _child(criteria, ns, "ResponseExpression")
            status = _child(criteria, ns, "ChangeStatus")
            code = (expression.get("actionCode") or "").strip() if expression is not None else ""
            code = code or _text(_child(status, ns, "Code"))
            if code:
                codes.append(code)
            if status is not None:
                notes += _notes(status, ns)
    failure = partial = success = False
    request_ids = []
    tail = []  # the BODs' and nouns' own texts, after what says why
    for element in data if data is not None else ():
        if not isinstance(element.tag, str) or etree.QName(element).namespace != ns:
            continue
        local = etree.QName(element).localname
        if noun is None and local == "BOD":
            for child in element:
                message = etree.QName(child).localname if isinstance(child.tag, str) else None
                if message == "BODFailureMessage":
                    failure = True
                elif message == "PartialBODFailureMessage":
                    partial = True
                elif message == "BODSuccessMessage":
                    success = True
                if message in ("BODFailureMessage", "PartialBODFailureMessage"):
                    for error in child.iter("{*}ErrorProcessMessage"):
                        notes += _notes(error, None, deep=False)
            tail += _notes(element, ns, deep=False)
        elif noun is not None and local == noun:
            tail += _notes(element, ns, deep=False)
            requests = [element] if noun == "ProductionRequest" else []
            if noun == "ProductionSchedule":
                requests = element.findall(etree.QName(ns, "ProductionRequest").text)
            for request in requests:
                request_ids.append(_text(_child(request, ns, "ID")))
                tail += _notes(request, ns, deep=False)
    said = {re.sub(r"[^a-z]", "", code.lower()): code for code in reversed(codes)}
    if failure:
        outcome, code = "rejected", "BODFailureMessage"
    elif partial:
        outcome, code = "partial", "PartialBODFailureMessage"
    elif "rejected" in said:
        outcome, code = "rejected", said["rejected"]
    elif "modified" in said:
        outcome, code = "modified", said["modified"]
    elif "accepted" in said:
        outcome, code = "accepted", said["accepted"]
    elif success:
        outcome, code = "accepted", "BODSuccessMessage"
    else:
        outcome, code = None, codes[0] if codes else None
    kept = []
    for note in notes + tail:
        if note not in kept and len(kept) < MAX_NOTES:
            kept.append(note)
    return Answer(
        name=name,
        namespace=ns,
        noun=noun,
        outcome=outcome,
        code=code,
        notes=tuple(kept),
        bod_id=bod_id,
        request_ids=tuple(request_ids),
    )


def _notes(element, ns, deep=True):
    """The texts (whitespace collapsed, cut) of ``element``'s Description, Reason... of
    namespace ``ns`` (None: any): its children, or all its descendants when ``deep``."""
    found = []
    for child in element.iter() if deep else element:
        if child is element or not isinstance(child.tag, str):
            continue
        qname = etree.QName(child)
        if qname.localname in _NOTE_NAMES and (ns is None or qname.namespace == ns):
            text = " ".join((child.text or "").split())
            if len(text) > MAX_NOTE_CHARS:
                text = text[: MAX_NOTE_CHARS - 3] + "..."
            if text:
                found.append(text)
    return found


def wrap(noun, verb, *, sender, bod_id, created, release_id="1.0"):
    """``noun`` (a bare B2MML document, bytes) in its ``<verb><noun>`` transaction:
    an ApplicationArea naming ``sender`` (LogicalID), ``created`` and ``bod_id``, and a
    DataArea holding the verb and the noun, in the noun's namespace."""
    if verb not in VERBS:
        raise ValueError(f"verb must be one of {', '.join(VERBS)}, got {verb!r}")
    element = etree.fromstring(noun)
    qname = etree.QName(element)
    ns = qname.namespace

    def add(parent, tag, text=None):
        child = etree.SubElement(parent, etree.QName(ns, tag).text)
        if text is not None:
            child.text = str(text)
        return child

    root = etree.Element(etree.QName(ns, f"{verb}{qname.localname}").text, nsmap={None: ns})
    root.set("releaseID", release_id)
    application = add(root, "ApplicationArea")
    add(add(application, "Sender"), "LogicalID", sender)
    add(application, "CreationDateTime", created.isoformat())
    add(application, "BODID", bod_id)
    data = add(root, "DataArea")
    add(data, verb)
    data.append(element)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _child(element, namespace, name):
    if element is None:
        return None
    return element.find(etree.QName(namespace, name).text)


def _text(element):
    if element is None:
        return None
    return (element.text or "").strip() or None


def _refused(field, value, reason, envelope=None):
    return _refused_all([FieldError(field, value, reason)], envelope)


def _refused_all(errors, envelope):
    error = MessageValidationError(errors)
    error.envelope = envelope  # to answer the transaction all the same
    return error
