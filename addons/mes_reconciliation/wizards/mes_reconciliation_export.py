import base64
import io
from datetime import date

import xlsxwriter

from odoo import fields, models


class MesReconciliationExport(models.TransientModel):
    """The reconciliation of a period as an XLSX workbook: one sheet of orders, one of lines."""

    _name = "mes.reconciliation.export"
    _description = "Export MES reconciliation to XLSX"

    date_from = fields.Date(
        "From",
        required=True,
        default=lambda self: self.env["mes.period.close"]._default_date_from(),
        help="The first day of last month unless you choose another.",
    )
    date_to = fields.Date(
        "To",
        required=True,
        default=lambda self: self.env["mes.period.close"]._default_date_to(),
        help="The last day of last month unless you choose another.",
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    only_open = fields.Boolean(
        "Only what is not balanced", help="Leave out orders that are balanced."
    )
    file_data = fields.Binary("File", readonly=True, attachment=False)
    file_name = fields.Char(readonly=True)

    ORDER_COLUMNS = [
        ("Order", lambda r: r.production_id.name),
        ("Product", lambda r: r.product_id.display_name),
        ("Plant", lambda r: r.warehouse_id.name or ""),
        ("Period date", lambda r: r.date),
        ("Order state", "production_state"),
        ("Status", "status"),
        ("Postings without MES report", lambda r: "yes" if r.unmatched else ""),
        ("Posted value", "posted_value"),
        ("Variance value (posted - reported)", "variance_value"),
        ("Usage variance value (reported - planned)", "usage_variance_value"),
        ("Explanation", lambda r: r.explanation or ""),
    ]
    LINE_COLUMNS = [
        ("Order", lambda line: line.production_id.name),
        ("Kind", "kind"),
        ("Product", lambda line: line.product_id.display_name or line.mes_code or ""),
        # A lot's line details the product's line above it (whose values hold the lot's).
        ("Lot", lambda line: f"  of which lot {line.lot_name}" if line.lot_detail else ""),
        ("Work center", lambda line: line.workcenter_id.name or ""),
        ("Unit", lambda line: line.uom_id.name or ""),
        ("Planned", "planned_qty"),
        ("MES reported", "reported_qty"),
        ("Not yet posted", "pending_qty"),
        ("Odoo posted", "posted_qty"),
        ("Posted without MES report", "unmatched_qty"),
        ("Variance (posted - reported)", "variance_qty"),
        ("Usage variance (reported - planned)", "usage_variance_qty"),
        ("Unit cost", "unit_cost"),
        ("Variance value", "variance_value"),
        ("Usage variance value", "usage_variance_value"),
        ("Status", "status"),
    ]

    def _records(self):
        domain = [
            ("company_id", "=", self.company_id.id),
            ("date", ">=", self.date_from),
            ("date", "<=", self.date_to),
        ]
        if self.only_open:
            domain.append(("status", "!=", "balanced"))
        return self.env["mes.reconciliation"].search(domain, order="date, id")

    def _cell(self, record, getter):
        if callable(getter):
            return getter(record)
        field = record._fields[getter]
        value = record[getter]
        if field.type == "selection":
            return dict(field._description_selection(self.env)).get(value, "")
        return value

    def _sheet(self, workbook, title, columns, records, formats):
        sheet = workbook.add_worksheet(title)
        for col, (label, _getter) in enumerate(columns):
            sheet.write(0, col, label, formats["header"])
            sheet.set_column(col, col, max(12, len(label) + 2))
        for row, record in enumerate(records, start=1):
            for col, (_label, getter) in enumerate(columns):
                value = self._cell(record, getter)
                if isinstance(value, date):
                    sheet.write_datetime(
                        row, col, fields.Datetime.to_datetime(value), formats["date"]
                    )
                elif isinstance(value, float):
                    sheet.write_number(row, col, value, formats["number"])
                else:
                    sheet.write(row, col, value)
        sheet.freeze_panes(1, 1)
        sheet.autofilter(0, 0, max(len(records), 1), len(columns) - 1)

    def action_export(self):
        self.ensure_one()
        records = self._records()
        buffer = io.BytesIO()
        workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
        formats = {
            "header": workbook.add_format({"bold": True, "bg_color": "#E9ECEF"}),
            "number": workbook.add_format({"num_format": "#,##0.00##"}),
            "date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
        }
        self._sheet(workbook, "Orders", self.ORDER_COLUMNS, records, formats)
        self._sheet(workbook, "Lines", self.LINE_COLUMNS, records.line_ids, formats)
        workbook.close()
        self.write(
            {
                "file_data": base64.b64encode(buffer.getvalue()),
                "file_name": f"mes-reconciliation-{self.date_from}-{self.date_to}.xlsx",
            }
        )
        return {
            "type": "ir.actions.act_url",
            "url": f"/web/content/{self._name}/{self.id}/file_data/{self.file_name}?download=true",
            "target": "self",
        }
