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

from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from .exceptions import MessageValidationError
from .validation import MISSING, FieldError

# The verbs of B2MML's transactions, as the schemas name their elements.
VERBS = ("Get", "Show", "Process", "Acknowledge", "Change", "Respond", "Cancel", "Sync")


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


def unwrap(root, noun, namespaces, verbs=VERBS, read_datetime=None):
    """``(nouns, envelope)`` of ``root``: ``[root]`` and None for a bare ``noun``, or the
    nouns of a ``<Verb><noun>`` transaction in one of ``namespaces`` with its
    :class:`Envelope`. A verb not in ``verbs``, another document, or a transaction
    without its DataArea, verb or noun raises :class:`MessageValidationError` naming
    the element. ``read_datetime(element, path)`` reads CreationDateTime (None or a
    datetime; it reports its own errors).
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
        raise _refused(
            "(root)",
            qname.localname,
            f"is a {verb} transaction, which this interface does not take for a {noun} "
            f"(it takes {', '.join(verbs)})",
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
    ns = envelope.namespace

    def add(parent, tag, text=None, **attrib):
        element = etree.SubElement(parent, etree.QName(ns, tag).text, attrib)
        if text is not None:
            element.text = str(text)
        return element

    root = etree.Element(etree.QName(ns, name).text, nsmap={None: ns})
    if name != "ConfirmBOD":  # the one BOD whose schema has no releaseID
        root.set("releaseID", envelope.release_id or "1.0")
    application = add(root, "ApplicationArea")
    add(add(application, "Sender"), "LogicalID", sender)
    add(application, "CreationDateTime", created.isoformat())
    add(application, "BODID", bod_id)
    data = add(root, "DataArea")
    verb = add(data, "Acknowledge" if name != "ConfirmBOD" else "Confirm")
    original = _original(envelope, ns)
    if original is not None:
        verb.append(original)
    criteria = add(verb, "ResponseCriteria")
    add(criteria, "ResponseExpression", actionCode="Accepted" if accepted else "Rejected")
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


# Larger ApplicationAreas (a sender's UserArea can hold anything) are not echoed back.
MAX_ORIGINAL_BYTES = 64 * 1024


def _original(envelope, ns):
    """The request's ApplicationArea, renamed OriginalApplicationArea."""
    if not envelope.application_area or len(envelope.application_area) > MAX_ORIGINAL_BYTES:
        return None
    original = etree.fromstring(envelope.application_area)
    original.tag = etree.QName(ns, "OriginalApplicationArea").text
    return original


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
