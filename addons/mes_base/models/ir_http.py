from odoo import models
from odoo.http import request

# Bodies larger than this are refused with 413 before anything is stored: the MES sends
# smaller batches (documented in the OpenAPI document).
MAX_BODY = 5 * 1024 * 1024
BODY_KEY = "mes.intake.body"
READ_SIZE = 64 * 1024


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _pre_dispatch(cls, rule, args):
        result = super()._pre_dispatch(rule, args)
        if rule.endpoint.routing.get("mes_raw_body"):
            cls._mes_read_body()
        return result

    @classmethod
    def _mes_read_body(cls):
        """Read the MES's body once, bounded, before Odoo parses anything of it.

        Before the dispatcher, because a form or multipart body would otherwise be
        consumed by Odoo's parameter parsing and lost; once per request, because Odoo
        runs the request again after a serialization conflict and a stream cannot be
        read twice; bounded while reading, because a chunked body has no
        Content-Length to check first. The bytes (or None when too large) are kept in
        the request's environment for the controller.
        """
        environ = request.httprequest.environ
        if BODY_KEY in environ:
            return
        declared = request.httprequest.content_length
        if declared is not None and declared > MAX_BODY:
            environ[BODY_KEY] = None
            return
        # Odoo's request wrapper does not expose the werkzeug stream; its own code reaches
        # the wrapped request the same way (bus websockets). The stream is a cached property
        # of that request: Odoo's form parsing later reads the same, consumed, stream.
        stream = request.httprequest._HTTPRequest__wrapped.stream
        chunks, size = [], 0
        while size <= MAX_BODY:
            chunk = stream.read(READ_SIZE)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        environ[BODY_KEY] = b"".join(chunks) if size <= MAX_BODY else None
