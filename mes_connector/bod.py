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
    elements = {}
    for child in root:
        if isinstance(child.tag, str) and etree.QName(child).namespace == qname.namespace:
            elements.setdefault(etree.QName(child).localname, child)
    application = elements.get("ApplicationArea")
    data = elements.get("DataArea")
    errors = []
    if data is None:
        raise _refused("DataArea", MISSING, f"is missing: a {qname.localname} carries its {noun}")
    verb_element = _child(data, qname.namespace, verb)
    if verb_element is None:
        errors.append(FieldError(f"DataArea/{verb}", MISSING, "is missing"))
    nouns = [
        child
        for child in data
        if isinstance(child.tag, str) and child.tag == etree.QName(qname.namespace, noun).text
    ]
    if not nouns:
        errors.append(FieldError(f"DataArea/{noun}", MISSING, "is missing"))
    if errors:
        raise MessageValidationError(errors)
    sender = created = bod_id = None
    if application is not None:
        sender_element = _child(application, qname.namespace, "Sender")
        sender = _text(_child(sender_element, qname.namespace, "LogicalID"))
        bod_id = _text(_child(application, qname.namespace, "BODID"))
        if read_datetime is not None:
            created = read_datetime(
                _child(application, qname.namespace, "CreationDateTime"),
                "ApplicationArea/CreationDateTime",
            )
    return nouns, Envelope(
        verb=verb,
        noun=noun,
        namespace=qname.namespace,
        release_id=root.get("releaseID"),
        sender=sender,
        created=created,
        bod_id=bod_id,
    )


def _child(element, namespace, name):
    if element is None:
        return None
    return element.find(etree.QName(namespace, name).text)


def _text(element):
    if element is None:
        return None
    return (element.text or "").strip() or None


def _refused(field, value, reason):
    return MessageValidationError([FieldError(field, value, reason)])
