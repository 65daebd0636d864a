{
    "name": "MES Maintenance",
    "summary": "MES breakdowns become corrective maintenance; equipment under maintenance "
    "is reported to the MES as blocked",
    "version": "18.0.1.0.0",
    "category": "Manufacturing/Maintenance",
    "website": "https://github.com/mes-connector/odoo-mes",
    "author": "Odoo MES Connector contributors",
    "license": "AGPL-3",
    "depends": ["mes_base", "maintenance"],
    "data": [
        "data/ir_cron.xml",
        "data/maintenance_stage_data.xml",
        "views/maintenance_views.xml",
        "views/mrp_workcenter_views.xml",
        "views/mes_backend_views.xml",
        "views/mes_mapping_views.xml",
    ],
    "demo": ["demo/mes_maintenance_demo.xml"],
}
