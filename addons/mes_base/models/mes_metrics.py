"""Metrics of the MES interface in the Prometheus text format, for the MES managers'
monitoring (see controllers/monitoring.py and the README's alert rules).

Gauges only, read from the message log when scraped: what waits, what failed and for
how long, the traffic of the last minutes, the time from received to posted, and when
each MES was last heard from. Each sample is labelled with its backend's code.
"""

from datetime import timedelta

from odoo import api, fields, models

from .mes_message import OPEN_STATES

# Traffic is counted over this window and given per minute.
WINDOW_MINUTES = 15
# Time from received to posted: over the messages posted in this window.
LATENCY_WINDOW = timedelta(hours=1)


def _label(value):
    """A label value as the text format writes it (backslash, quote and line feed escaped)."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MesMetrics(models.AbstractModel):
    _name = "mes.metrics"
    _description = "MES interface metrics"

    @api.model
    def _exposition(self):
        """The metrics of the backends this user may read, as the text format has them."""
        lines = []
        for name, kind, help_text, samples in self._families():
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                text = ",".join(f'{key}="{_label(val)}"' for key, val in labels.items())
                number = value if isinstance(value, int) else repr(float(value))
                lines.append(f"{name}{{{text}}} {number}" if text else f"{name} {number}")
        return "\n".join(lines) + "\n"

    @api.model
    def _families(self):
        """(name, type, help, [(labels, value)]) of each metric."""
        backends = self.env["mes.backend"].search([("company_id", "in", self.env.companies.ids)])
        codes = {backend.id: backend.code for backend in backends}
        ids = list(codes)
        now = fields.Datetime.now()
        cr = self.env.cr
        self.env["mes.message"].flush_model()
        self.env["mes.error.cause"].flush_model()

        cr.execute(
            """
            SELECT backend_id, direction, state, count(*), min(create_date)
              FROM mes_message
             WHERE backend_id = ANY(%s) AND state IN %s
             GROUP BY backend_id, direction, state
            """,
            (ids, OPEN_STATES),
        )
        backlog, oldest = [], []
        for backend_id, direction, state, count, first in cr.fetchall():
            labels = {"backend": codes[backend_id], "direction": direction, "state": state}
            backlog.append((labels, count))
            oldest.append((labels, (now - first).total_seconds()))

        cr.execute(
            """
            SELECT backend_id, count(*) FROM mes_message
             WHERE backend_id = ANY(%s) AND direction = 'outbound' AND state = 'pending'
               AND error_code = 'retrying'
             GROUP BY backend_id
            """,
            (ids,),
        )
        retrying = dict(cr.fetchall())

        since = now - timedelta(minutes=WINDOW_MINUTES)
        cr.execute(
            """
            SELECT backend_id, direction, count(*) FROM mes_message
             WHERE backend_id = ANY(%s) AND create_date >= %s
             GROUP BY backend_id, direction
            """,
            (ids, since),
        )
        traffic = {(backend_id, direction): count for backend_id, direction, count in cr.fetchall()}
        cr.execute(
            """
            SELECT backend_id, count(*) FROM mes_message
             WHERE backend_id = ANY(%s) AND processed_at >= %s AND direction = 'inbound'
               AND state = 'processed'
             GROUP BY backend_id
            """,
            (ids, since),
        )
        posted = dict(cr.fetchall())

        cr.execute(
            """
            SELECT backend_id,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds),
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds)
              FROM (SELECT backend_id,
                           EXTRACT(EPOCH FROM processed_at - create_date) AS seconds
                      FROM mes_message
                     WHERE backend_id = ANY(%s) AND processed_at >= %s
                       AND direction = 'inbound' AND state = 'processed') posted
             GROUP BY backend_id
            """,
            (ids, now - LATENCY_WINDOW),
        )
        latency = []
        for backend_id, median, p95 in cr.fetchall():
            latency.append(({"backend": codes[backend_id], "quantile": "0.5"}, median))
            latency.append(({"backend": codes[backend_id], "quantile": "0.95"}, p95))

        # Per backend, its newest inbound message, found from the end of its index.
        cr.execute(
            """
            SELECT b.id, last.create_date
              FROM unnest(%s::int[]) AS b(id)
              JOIN LATERAL (SELECT create_date FROM mes_message
                             WHERE backend_id = b.id AND direction = 'inbound'
                             ORDER BY create_date DESC LIMIT 1) last ON TRUE
            """,
            (ids,),
        )
        contact = dict(cr.fetchall())

        cr.execute(
            """
            SELECT backend_id, cause_code, severity, count(*) FROM mes_error_cause
             WHERE backend_id = ANY(%s) AND state = 'open'
             GROUP BY backend_id, cause_code, severity
            """,
            (ids,),
        )
        causes = [
            (
                {"backend": codes[backend_id], "cause": cause or "", "severity": severity},
                count,
            )
            for backend_id, cause, severity, count in cr.fetchall()
        ]

        def per_backend(values, default=0):
            return [({"backend": codes[i]}, values.get(i, default)) for i in ids]

        return [
            (
                "mes_messages_open",
                "gauge",
                "Messages not done, by backend, direction and state.",
                backlog,
            ),
            (
                "mes_messages_open_oldest_age_seconds",
                "gauge",
                "Age of the oldest message not done, by backend, direction and state.",
                oldest,
            ),
            (
                "mes_exports_retrying",
                "gauge",
                "Order exports not delivered yet because the MES could not be reached.",
                per_backend(retrying),
            ),
            (
                "mes_messages_received_per_minute",
                "gauge",
                f"Messages received from the MES per minute, over the last {WINDOW_MINUTES} "
                "minutes.",
                [
                    ({"backend": codes[i]}, traffic.get((i, "inbound"), 0) / WINDOW_MINUTES)
                    for i in ids
                ],
            ),
            (
                "mes_messages_sent_per_minute",
                "gauge",
                f"Messages written for the MES per minute, over the last {WINDOW_MINUTES} minutes.",
                [
                    ({"backend": codes[i]}, traffic.get((i, "outbound"), 0) / WINDOW_MINUTES)
                    for i in ids
                ],
            ),
            (
                "mes_messages_posted_per_minute",
                "gauge",
                f"MES reports posted in Odoo per minute, over the last {WINDOW_MINUTES} minutes.",
                [({"backend": codes[i]}, posted.get(i, 0) / WINDOW_MINUTES) for i in ids],
            ),
            (
                "mes_post_latency_seconds",
                "gauge",
                "Seconds from received to posted of the reports posted in the last hour.",
                latency,
            ),
            (
                "mes_last_contact_age_seconds",
                "gauge",
                "Seconds since the MES last sent a message (absent: never).",
                [
                    ({"backend": codes[i]}, (now - contact[i]).total_seconds())
                    for i in ids
                    if i in contact
                ],
            ),
            (
                "mes_error_causes_open",
                "gauge",
                "Open error causes (one per cause and value at fault), by cause code.",
                causes,
            ),
        ]
