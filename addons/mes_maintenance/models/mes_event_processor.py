from odoo import models


class MesEventProcessor(models.AbstractModel):
    _inherit = "mes.event.processor"

    def _process_downtime_started(self, message, event):
        result = super()._process_downtime_started(message, event)
        self._mes_breakdown(message, event["data"])
        return result

    def _process_downtime_ended(self, message, event):
        result = super()._process_downtime_ended(message, event)
        self._mes_breakdown(message, event["data"])
        return result

    def _mes_breakdown(self, message, data):
        log = self._downtime(message, data)
        mapping = self.env["mes.mapping"].search(
            [
                ("backend_id", "=", message.backend_id.id),
                ("mapping_type", "=", "downtime_reason"),
                ("mes_code", "=", log.mes_reason_code),
            ],
            limit=1,
        )
        if mapping.mes_breakdown and not log.mes_breakdown:
            log.mes_breakdown = True
        log._mes_sync_maintenance()
