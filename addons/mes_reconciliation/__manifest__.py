{
    "name": "MES Reconciliation",
    "summary": "Prove before close that what the MES reported is what Odoo posted",
    "version": "18.0.1.1.0",
    "category": "Manufacturing/Manufacturing",
    "website": "https://github.com/mes-connector/odoo-mes",
    "author": "Odoo MES Connector contributors",
    "license": "AGPL-3",
    "depends": ["mes_base", "mrp_account", "hr_hourly_cost"],
    "data": [
        "security/security.xml",
        "security/ir.model.access.csv",
        "data/ir_cron.xml",
        "views/mes_reconciliation_line_views.xml",
        "views/mes_reconciliation_views.xml",
        "views/mes_period_close_views.xml",
        "views/mes_backend_views.xml",
        "wizards/mes_reconciliation_export_views.xml",
        "views/mes_reconciliation_menus.xml",
    ],
    "assets": {
        "web.assets_tests": ["mes_reconciliation/static/tests/tours/*"],
    },
}
