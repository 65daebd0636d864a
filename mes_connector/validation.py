"""Schema validation with errors that name the field, the value and what was expected.

Also the first step of an intake: :func:`decode_json_body` turns the bytes of a request
into a JSON value, refusing what PostgreSQL text or a JSON answer could not hold. What
passes both can be stored and answered: no NUL, no lone surrogate, no NaN nor infinity,
integers that fit a PostgreSQL integer, date-times Python can convert to UTC.
"""

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from itertools import accumulate, islice

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

from .exceptions import MessageValidationError

MISSING = object()
_MISSING = MISSING

# Limits. The schemas state the numeric ones too (event.v1.json "maximum"s).
MAX_DEPTH = 64  # levels of nested arrays and objects in a body or a message
MIN_INTEGER = -2147483648  # a PostgreSQL integer
MAX_INTEGER = 2147483647
MAX_QUANTITY = 1_000_000_000_000  # quantities and counts of mes.event/1
MAX_MINUTES = 10_000_000  # setup and run minutes of mes.event/1 (about 19 years)
# Date-times are stored naive in UTC: one day away from Python's year 1 and 9999, so
# that no conversion to or from a time zone overflows.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
DATETIME_RANGE = "between 1970-01-01 and 9998-12-31 (UTC)"
MAX_ERRORS = 100  # problems listed for one message or body; the rest is counted
MAX_FIELD_CHARS = 200  # FieldError.field, cut with "..."
MAX_REASON_CHARS = 500
MAX_VALUE_CHARS = 200  # a string value in FieldError.as_dict()
_MAX_SHOWN = 60  # the value in str(FieldError)
_SHOWN_DEPTH = 8  # nesting shown in a value before "..."

# Characters PostgreSQL text cannot hold (NUL) or UTF-8 cannot encode (lone surrogates).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _escape(match):
    return f"\\u{ord(match[0]):04x}"


def _printable(text, limit):
    """``text`` with NUL and lone surrogates written as escapes, cut to ``limit``."""
    cut = len(text) > limit
    text = _UNSTORABLE.sub(_escape, text[:limit])
    if cut or len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


@dataclass(frozen=True)
class FieldError:
    """One problem in a message: ``field`` is a dotted path such as ``data.quantity``.

    ``field`` (at most 200 characters) and ``reason`` are cut with "..." and have NUL
    and lone surrogates escaped, so an error about a hostile value can itself be
    stored and answered. ``value`` is the value as found; ``str()`` and
    :meth:`as_dict` show it safely.
    """

    field: str
    value: object
    reason: str

    def __post_init__(self):
        object.__setattr__(self, "field", _printable(str(self.field), MAX_FIELD_CHARS))
        object.__setattr__(self, "reason", _printable(str(self.reason), MAX_REASON_CHARS))

    def __str__(self):
        if self.value is _MISSING:
            return f"{self.field}: {self.reason}"
        return f"{self.field}: {_show(self.value)} {self.reason}"

    def as_dict(self):
        """The error for a JSON answer: ``json.dumps(..., allow_nan=False)`` always works.

        Short values are kept as they are; NaN, infinities, integers beyond 2**53 and
        values too long or too deep to show whole become text (cut with "...").
        """
        out = {"field": self.field, "reason": self.reason}
        if self.value is not _MISSING:
            out["value"] = _json_value(self.value)
        return out


class _Full(Exception):
    """Enough of a value is written."""


def _render(value, limit):
    """(JSON text of ``value`` cut to ``limit`` characters, whether it is whole).

    Never fails and stops early, whatever the value: NaN and infinities are written as
    such, huge integers by a placeholder, lone surrogates escaped, nesting beyond a
    few levels as "...".
    """
    parts = []
    size = 0

    def put(text):
        nonlocal size
        parts.append(text)
        size += len(text)
        if size > limit:
            raise _Full

    def walk(item, depth):
        if isinstance(item, dict | list | tuple) and depth >= _SHOWN_DEPTH:
            put("...")
            raise _Full  # not whole, even if short
        if isinstance(item, dict):
            put("{")
            for index, (key, inner) in enumerate(item.items()):
                if index:
                    put(", ")
                put(_scalar_text(key if isinstance(key, str) else str(key), limit))
                put(": ")
                walk(inner, depth + 1)
            put("}")
        elif isinstance(item, list | tuple):
            put("[")
            for index, inner in enumerate(item):
                if index:
                    put(", ")
                walk(inner, depth + 1)
            put("]")
        else:
            put(_scalar_text(item, limit))

    try:
        walk(value, 0)
    except _Full:
        text = "".join(parts)
        if len(text) > limit:
            text = text[: limit - 3] + "..."
        return text, False
    return "".join(parts), True


def _scalar_text(item, limit):
    if item is None or isinstance(item, bool | int | float):
        try:
            return json.dumps(item)  # NaN, Infinity, -Infinity for non-finite floats
        except ValueError:  # int() will not write more than 4300 digits
            return "(an integer of more than 4300 digits)"
    text = item if isinstance(item, str) else str(item)
    return _UNSTORABLE.sub(_escape, json.dumps(text[: limit + 1], ensure_ascii=False))


def _show(value, limit=_MAX_SHOWN):
    return _render(value, limit)[0]


def _json_value(value):
    """``value`` as something JSON can always carry, short (see FieldError.as_dict)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) <= 2**53 else _show(value, MAX_VALUE_CHARS)
    if isinstance(value, float):
        return value if math.isfinite(value) else _show(value)
    if not isinstance(value, dict | list | tuple):  # a string, or no JSON value at all
        return _printable(str(value), MAX_VALUE_CHARS)
    text, whole = _render(value, MAX_VALUE_CHARS)
    if not whole:
        return text
    if isinstance(value, dict):
        return {_printable(str(key), MAX_VALUE_CHARS): _json_value(v) for key, v in value.items()}
    return [_json_value(item) for item in value]


# ---------------------------------------------------------------------------
# Values no schema keyword can refuse
# ---------------------------------------------------------------------------

_NOT_FINITE = "is not a finite number: NaN, infinity and numbers beyond ±1.8e308 cannot be stored"


def _character_reason(text, what=""):
    bad = _UNSTORABLE.search(text)[0]
    if bad == "\x00":
        return f"{what}holds a NUL character (\\u0000), which text in the database cannot hold"
    return (
        f"{what}holds a lone surrogate (\\u{ord(bad):04x}), which is no character and "
        "cannot be written as UTF-8"
    )


def _scalar_reason(item):
    """Why a string or a number cannot be stored, or None."""
    if isinstance(item, str):
        return _character_reason(item) if _UNSTORABLE.search(item) else None
    if isinstance(item, float):
        return None if math.isfinite(item) else _NOT_FINITE
    if isinstance(item, int):
        try:
            float(item)  # an integer beyond the largest double overflows
        except OverflowError:
            return _NOT_FINITE
    return None


def _path(parts, root="(message)"):
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or root


def _value_errors(value, root):
    """Problems of a JSON value anywhere in it: (errors, whether a schema may read it).

    NUL characters and lone surrogates in strings and field names, numbers that are
    not finite, nesting deeper than MAX_DEPTH. Iterative, so no depth makes it
    recurse; it stops after MAX_ERRORS problems. A value too deep, not wholly checked
    or holding an integer too large to print must not go to jsonschema, which would
    fail on it.
    """
    if not isinstance(value, dict | list | tuple):
        reason = _scalar_reason(value)
        return ([FieldError(root, value, reason)] if reason else []), True
    errors = []
    readable = True
    todo = [((), value, 0)]  # containers to look into: path, container, depth
    while todo:
        parts, container, depth = todo.pop()
        if depth >= MAX_DEPTH:
            reason = f"is nested deeper than {MAX_DEPTH} levels of arrays and objects"
            errors.append(FieldError(_path(parts, root), MISSING, reason))
            readable = False
            continue
        is_object = isinstance(container, dict)
        nested = []
        for key, item in container.items() if is_object else enumerate(container):
            if is_object and isinstance(key, str) and _UNSTORABLE.search(key):
                reason = _character_reason(key, "is a field name that ")
                errors.append(FieldError(_path((*parts, key), root), key, reason))
            if isinstance(item, dict | list | tuple):
                nested.append(((*parts, key), item, depth + 1))
                continue
            reason = _scalar_reason(item)
            if reason:
                errors.append(FieldError(_path((*parts, key), root), item, reason))
                readable = readable and not isinstance(item, int)
            if len(errors) > MAX_ERRORS:
                return errors, False  # enough to say there are more; the rest is unchecked
        todo.extend(reversed(nested))  # taken in document order
    return errors, readable


def _capped(errors, root):
    if len(errors) <= MAX_ERRORS:
        return errors
    more = FieldError(root, MISSING, f"has more problems: only the first {MAX_ERRORS} are listed")
    return [*errors[:MAX_ERRORS], more]


# ---------------------------------------------------------------------------
# Request bodies
# ---------------------------------------------------------------------------

_UTF8_BOM = b"\xef\xbb\xbf"
# What decode_json_body must skip to count nesting: strings (brackets in them are text).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_NESTING_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# How JSON text writes a NUL or a surrogate (lone or not): bodies without any skip the
# walk through their strings.
_UNSTORABLE_TEXT = re.compile(r"\x00|\\u(?:0000|[dD][89a-fA-F])")
# int() refuses more than 4300 digits, without saying where: longer integers are read
# as floats (infinity beyond 309 digits), then refused with their path.
_LONG_INTEGER = 300


def _body_error(reason):
    return MessageValidationError([FieldError("(body)", MISSING, reason)])


def too_deep(text):
    """Whether arrays and objects nest deeper than MAX_DEPTH in JSON text (not parsed)."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    depths = accumulate(map(_NESTING_STEP.__getitem__, brackets))
    return next(filter(MAX_DEPTH.__lt__, depths), None) is not None  # stops at the first


class _NotJsonNumber(float):
    """NaN, Infinity or -Infinity as a body writes them: no JSON, refused with its path."""


def _loads(text, strict=True):
    """(the JSON value of ``text``, whether it may hold a number that is not finite).

    NaN, Infinity and numbers that overflow are read as floats and noted, for the
    walk through the value to name where they are (json itself would only give a
    character position).
    """
    odd = []

    def constant(name):
        odd.append(name)
        return _NotJsonNumber(name)

    def number(text):
        value = float(text)
        if math.isinf(value):
            odd.append(text)
        return value

    def integer(text):
        if len(text) <= _LONG_INTEGER:
            return int(text)
        odd.append(text)
        return float(text)

    value = json.loads(
        text, parse_constant=constant, parse_float=number, parse_int=integer, strict=strict
    )
    return value, bool(odd)


def decode_json_body(body, *, check_values=True):
    """The JSON value of a request body, or :class:`MessageValidationError` saying why not.

    ``body`` is the body as bytes, UTF-8 encoded (a UTF-8 byte order mark is skipped).
    Refused with a ``(body)`` error: an empty body, UTF-16 or UTF-32, bytes that are
    not UTF-8 (the offset of the first bad byte is named), JSON that does not parse
    (line and column named) or nests deeper than :data:`MAX_DEPTH` levels (found
    before parsing: no depth makes this recurse). Refused with the JSON path of the
    value (``events[3].order_ref``): NaN, Infinity and -Infinity, numbers that
    overflow to infinity (``1e400``), NUL characters and lone surrogates
    (``"\\ud800"``) in strings and field names. At most MAX_ERRORS are listed.

    ``check_values=False`` refuses only what is no JSON at all: the ``(body)`` errors,
    NaN, Infinity and -Infinity. NUL characters, lone surrogates and numbers beyond a
    double are then left in the value, for :func:`validation_errors` to name event by
    event: one such event does not refuse a whole batch.
    """
    if isinstance(body, bytearray | memoryview):
        body = bytes(body)
    if not isinstance(body, bytes):
        raise TypeError(f"a request body is bytes, not {type(body).__name__}")
    encoding = json.detect_encoding(body)
    if encoding.startswith(("utf-16", "utf-32")):
        name = encoding[:6].upper()  # utf-16-le -> UTF-16
        raise _body_error(f"is encoded in {name}, not UTF-8: JSON must be sent as UTF-8")
    skipped = len(_UTF8_BOM) if body.startswith(_UTF8_BOM) else 0
    try:
        text = body[skipped:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = skipped + err.start
        raise _body_error(
            f"is not UTF-8: byte 0x{body[offset]:02x} at offset {offset} is not valid UTF-8"
        ) from None
    if not text.strip():
        raise _body_error('is empty: a JSON event or {"events": [...]} is expected')
    if too_deep(text):
        raise _body_error(f"nests arrays and objects deeper than {MAX_DEPTH} levels")
    try:
        value, odd_numbers = _loads(text)
    except json.JSONDecodeError as err:
        if not check_values:
            raise _syntax_error(err) from None
        value, odd_numbers = _with_raw_nul(text, err)
    errors = []
    if odd_numbers or (check_values and _UNSTORABLE_TEXT.search(text)):
        errors = _value_errors(value, "(body)")[0]
    if not check_values:
        errors = [error for error in errors if isinstance(error.value, _NotJsonNumber)]
    if errors:
        raise MessageValidationError(_capped(errors, "(body)"))
    return value


def _with_raw_nul(text, err):
    """``_loads`` of JSON text refused for a raw NUL in a string, to name where it is.

    Any other syntax error is the body's error: raised.
    """
    if err.pos < len(text) and text[err.pos] == "\x00":
        try:
            return _loads(text, strict=False)  # control characters in strings allowed
        except json.JSONDecodeError:
            pass
    raise _syntax_error(err) from None


def _syntax_error(err):
    return _body_error(
        f"is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno} "
        f"(character {err.pos})"
    )


# ---------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------

_format_checker = FormatChecker(formats=())


class _OutOfRange(ValueError):
    """A date-time outside EARLIEST..LATEST."""


def in_datetime_range(moment):
    """Whether an aware datetime is within :data:`EARLIEST`..:data:`LATEST` in UTC.

    Compares without converting (``astimezone`` overflows for year 1 at +01:00 or
    year 9999 at -01:00).
    """
    return EARLIEST <= moment <= LATEST


@_format_checker.checks("date-time", raises=ValueError)
def _is_datetime(value):
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    if not in_datetime_range(parsed):
        raise _OutOfRange(value)
    return True


def _hashable(item):
    """A hashable form of a JSON value; equal forms for values JSON Schema calls equal."""
    if isinstance(item, dict):
        return ("object", frozenset((key, _hashable(value)) for key, value in item.items()))
    if isinstance(item, list | tuple):
        return ("array", tuple(_hashable(value) for value in item))
    if isinstance(item, bool):
        return ("boolean", item)
    if isinstance(item, int | float):
        return ("number", item)  # 1 and 1.0 are the same number
    return (type(item).__name__, item)


def _unique_items(validator, unique, instance, schema):
    # jsonschema's own check compares every pair when the items cannot be sorted:
    # hours for 100,000 mixed items. One pass over hashable forms instead.
    if not unique or not validator.is_type(instance, "array"):
        return
    seen = set()
    for item in instance:
        key = _hashable(item)
        if key in seen:
            yield ValidationError("has non-unique elements")
            return
        seen.add(key)


_Validator = validators.extend(Draft202012Validator, {"uniqueItems": _unique_items})


@cache
def load_schema(name):
    """The JSON schema shipped with this package, by file name (``event.v1.json``)."""
    text = resources.files("mes_connector").joinpath("schemas", name).read_text("utf-8")
    return json.loads(text)


@cache
def _validator(name):
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return _Validator(schema, format_checker=_format_checker)


def type_rules(schema):
    """What a schema's ``allOf`` of ``if event_type ... then`` rules says per type:
    (the ``data`` schema of each type, the types that also require ``order_ref`` unless
    ``mes_order_id`` names the order)."""
    data_of, needs_order = {}, None
    for rule in schema.get("allOf", []):
        condition = rule["if"]["properties"]["event_type"]
        if "const" in condition:
            data_of[condition["const"]] = rule["then"]["properties"]["data"]
        elif "not" in condition and "order_ref" in rule["then"].get("else", {}).get("required", []):
            needs_order = set(schema["properties"]["event_type"]["enum"]) - set(
                condition["not"]["enum"]
            )
    return data_of, needs_order or set()


def event_variant(schema, event_type):
    """The schema of one event type, the rules applied: what ``schema`` (an event schema
    with per-type rules) asks of an event whose ``event_type`` is ``event_type``."""
    data_of, needs_order = type_rules(schema)
    variant = {key: value for key, value in schema.items() if key != "allOf"}
    variant["properties"] = dict(
        schema["properties"],
        event_type={"const": event_type},
        data=data_of.get(event_type, schema["properties"]["data"]),
    )
    if event_type in needs_order:
        variant["if"] = {"required": ["mes_order_id"]}
        variant["else"] = {"required": ["order_ref"]}
    return variant


@cache
def _type_validator(name, event_type):
    """A validator of one event type: the same checks as the whole schema, without trying
    every type's rule on every event (a document of 25,000 events is read 3x faster)."""
    return _Validator(event_variant(load_schema(name), event_type), format_checker=_format_checker)


def _variant_of(message, schema_name):
    """The event type whose variant of the schema judges ``message``, or None (the whole
    schema: no per-type rules, or a type the schema does not know)."""
    event_type = message.get("event_type")
    schema = load_schema(schema_name)
    types = schema.get("properties", {}).get("event_type", {}).get("enum", ())
    if "allOf" in schema and isinstance(event_type, str) and event_type in types:
        return event_type
    return None


def _validator_for(message, schema_name):
    event_type = _variant_of(message, schema_name)
    if event_type:
        return _type_validator(schema_name, event_type)
    return _validator(schema_name)


def _is_valid_datetime(value):
    try:
        return _is_datetime(value)
    except ValueError:
        return False


@cache
def _fast_validator(name, event_type):
    """The same schema (or one type's variant) compiled by jsonschema-rs: whether a message
    is valid, about a hundred times faster than jsonschema, without saying why not."""
    schema = event_variant(load_schema(name), event_type) if event_type else load_schema(name)
    return jsonschema_rs.validator_for(
        schema, formats={"date-time": _is_valid_datetime}, validate_formats=True
    )


def _fast_valid(message, schema_name):
    """Whether the compiled schema finds no fault in ``message`` (checked for values
    first: no NUL, lone surrogate or number that is not finite).

    Only a yes is taken as the answer; a no, or a value the compiled validator cannot
    read, sends the message to jsonschema, which names its faults. The compiled one
    is never laxer where it matters: where the two differ (``$`` before a final line
    break in a pattern), it is the stricter, and the message is judged by jsonschema.
    """
    try:
        return _fast_validator(schema_name, _variant_of(message, schema_name)).is_valid(message)
    except Exception:  # any doubt goes to the validator that explains
        return False


def _reason(error):
    kind = error.validator
    expected = error.validator_value
    if kind == "type":
        types = expected if isinstance(expected, list) else [expected]
        return "is not of type " + " or ".join(types)
    if kind == "enum":
        return "is not one of " + ", ".join(json.dumps(v) for v in expected)
    if kind == "const":
        return f"is not {json.dumps(expected)}"
    if kind == "exclusiveMinimum":
        return f"must be greater than {expected}"
    if kind == "minimum":
        return f"must be {expected} or more"
    if kind == "maximum":
        return f"must be {expected} or less"
    if kind == "minLength":
        return "must not be empty" if expected == 1 else f"must be at least {expected} characters"
    if kind == "maxLength":
        return f"must be at most {expected} characters"
    if kind == "pattern":
        return f"must match {expected}"
    if kind == "uniqueItems":
        return "must not hold the same item twice"
    if kind == "format" and isinstance(error.cause, _OutOfRange):
        return f"must be a date-time {DATETIME_RANGE}"
    if kind == "format":
        return "is not a date-time with time zone (ISO 8601, e.g. 2026-01-31T08:00:00Z)"
    return error.message


def _field_errors(error):
    """One jsonschema error as field errors (``required`` and extra keys: one per field)."""
    base = list(error.absolute_path)
    if error.validator == "required":
        present = error.instance if isinstance(error.instance, dict) else {}
        return [
            FieldError(_path([*base, name]), _MISSING, "is missing")
            for name in error.validator_value
            if name not in present
        ]
    if error.validator == "dependentRequired":
        present = error.instance if isinstance(error.instance, dict) else {}
        return [
            FieldError(
                _path([*base, name]), MISSING, f"is missing (needed with {_path([*base, key])})"
            )
            for key, needed in error.validator_value.items()
            if key in present
            for name in needed
            if name not in present
        ]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = (name for name in error.instance if name not in allowed)
        return [
            FieldError(_path([*base, name]), error.instance[name], "is not an expected field")
            for name in islice(extra, MAX_ERRORS + 1)  # more are not listed anyway
        ]
    return [FieldError(_path(base), error.instance, _reason(error))]


def _collect(error):
    # allOf/if-then wrap the interesting errors: report the innermost ones.
    if error.context:
        for sub in error.context:
            yield from _collect(sub)
    else:
        yield from _field_errors(error)


def validation_errors(message, schema_name):
    """All problems of ``message`` against a packaged schema, sorted by field.

    Never raises for a value ``json.loads`` can produce. Besides the schema, every
    string and field name must be storable as text (no NUL, no lone surrogate), every
    number finite, nesting at most :data:`MAX_DEPTH` levels deep, and every
    date-time :data:`DATETIME_RANGE`. At most :data:`MAX_ERRORS` problems are listed
    (then one more says there are more).
    """
    if not isinstance(message, dict):
        return [FieldError("(message)", message, "is not a JSON object")]
    errors, readable = _value_errors(message, "(message)")
    if not errors and _fast_valid(message, schema_name):
        return []
    if readable:
        found = {error.field for error in errors}
        for error in _validator_for(message, schema_name).iter_errors(message):
            errors.extend(e for e in _collect(error) if e.field not in found)
            if len(errors) > MAX_ERRORS:
                break
    unique = {(e.field, e.reason): e for e in errors}
    return _capped(sorted(unique.values(), key=lambda e: e.field), "(message)")


def _check(message, schema_name):
    errors = validation_errors(message, schema_name)
    if errors:
        raise MessageValidationError(errors)
    return message


def validate_event(message):
    """Raise :class:`MessageValidationError` unless ``message`` is a valid MES event."""
    return _check(message, "event.v1.json")


def validate_order(message):
    """Raise :class:`MessageValidationError` unless ``message`` is a valid order export."""
    return _check(message, "order.v1.json")


def parse_event(message):
    """Validate a decoded event and return it as an :class:`~mes_connector.messages.Event`."""
    from .messages import Event

    return Event.from_dict(validate_event(message))
