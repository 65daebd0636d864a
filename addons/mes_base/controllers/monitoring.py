import logging

from odoo import http
from odoo.http import request

_logger = logging.getLogger(__name__)

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MesMonitoringController(http.Controller):
    """What monitoring reads of the MES interface.

    ``GET /mes/api/v1/health``: unauthenticated liveness: the database answers and this
    addon is installed in it (200), nothing else said. ``GET /mes/api/v1/metrics``:
    Prometheus text format, with ``Authorization: Bearer <API key>`` of an MES manager
    (an Odoo API key, Preferences > Account Security); the metrics of the backends of
    that user's companies only.
    """

    @http.route("/mes/api/v1/health", type="http", auth="none", methods=["GET"], save_session=False)
    def health(self, **_kw):
        if not request.db:
            return request.make_json_response({"status": "fail"}, status=503)
        request.env.cr.execute("SELECT 1")
        return request.make_json_response({"status": "pass"})

    @http.route(
        "/mes/api/v1/metrics", type="http", auth="none", methods=["GET"], save_session=False
    )
    def metrics(self, **_kw):
        user = self._api_key_user()
        if user is None:
            return self._refuse(401, "an MES manager's API key is needed: Authorization: Bearer")
        if not user.has_group("mes_base.group_mes_manager"):
            _logger.warning("MES metrics: refused user %s (not an MES manager)", user.id)
            return self._refuse(403, "only MES managers read the metrics")
        env = request.env(
            user=user.id,
            context=dict(request.env.context, allowed_company_ids=user.company_ids.ids),
        )
        body = env["mes.metrics"]._exposition()
        return request.make_response(body.encode(), headers=[("Content-Type", PROMETHEUS_TYPE)])

    def _api_key_user(self):
        authorization = request.httprequest.headers.get("Authorization", "")
        if not authorization.lower().startswith("bearer "):
            return None
        key = authorization[7:].strip()
        if not key or len(key) > 256:
            return None
        uid = request.env["res.users.apikeys"].sudo()._check_credentials(scope="rpc", key=key)
        if not uid:
            _logger.warning("MES metrics: refused a key from %s", request.httprequest.remote_addr)
            return None
        user = request.env["res.users"].sudo().browse(uid)
        return user if user.active else None

    def _refuse(self, status, reason):
        return request.make_json_response({"error": reason}, status=status)
