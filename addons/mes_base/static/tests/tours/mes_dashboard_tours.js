/** @odoo-module **/

import { registry } from "@web/core/registry";

const tours = registry.category("web_tour.tours");

// A planner follows an error cause to its messages and retries the one a new mapping fixed.
tours.add("mes_planner_dashboard", {
    steps: () => [
        {
            content: "The dashboard counts the error among those to fix",
            trigger: ".o_mes_dashboard[data-dashboard=planner] .o_mes_tile[data-tile=errors].border-danger",
        },
        {
            content: "Errors are grouped by cause: open the messages of one",
            trigger:
                ".o_mes_section_causes a.o_mes_row_link:contains('MES product code TOUR-42 is not mapped to a product')",
            run: "click",
        },
        {
            content: "The list holds the message of that cause",
            trigger: ".o_list_view .o_data_row:contains('Material consumed') td[name=message_type]",
            run: "click",
        },
        {
            content: "The mapping is fixed: retry",
            trigger: ".o_form_view button[name=action_retry]",
            run: "click",
        },
        {
            content: "Tried at once: the planner reads how it went",
            trigger: ".o_notification:contains('Tried again: processed')",
        },
        {
            content: "The message is posted",
            trigger: ".o_form_view .o_statusbar_status .o_arrow_button_current:contains('Processed')",
        },
        {
            content: "Back to the dashboard",
            trigger: ".o_breadcrumb .breadcrumb-item a:contains('MES exceptions')",
            run: "click",
        },
        {
            trigger: ".o_mes_dashboard[data-dashboard=planner] .o_mes_section_by_age",
        },
    ],
});

// The warehouse sees consumption waiting for a lot Odoo does not know.
tours.add("mes_warehouse_dashboard", {
    steps: () => [
        {
            trigger: ".o_mes_dashboard[data-dashboard=warehouse] .o_mes_section_unknown_lots tr[data-row='TOUR-LOT-9']",
        },
        {
            content: "Open what waits for unknown lots",
            trigger: ".o_mes_tile[data-tile=unknown_lots]",
            run: "click",
        },
        {
            trigger: ".o_list_view .o_data_row:contains('Material consumed')",
        },
        {
            trigger: ".o_breadcrumb .breadcrumb-item a:contains('MES stock exceptions')",
            run: "click",
        },
        {
            content: "Negative stock made by an MES posting is listed",
            trigger: ".o_mes_section_negative_stock a.o_mes_cell_link",
            run: "click",
        },
        {
            trigger: ".o_list_view .o_data_row",
        },
    ],
});

// The integrator checks the contact with each MES and the backlog behind it.
tours.add("mes_health_dashboard", {
    steps: () => [
        {
            trigger: ".o_mes_dashboard[data-dashboard=health] .o_mes_section_backends tr[data-row='Tour MES']",
        },
        {
            trigger: ".o_mes_section_traffic .o_mes_bar_group",
        },
        {
            content: "Open the backlog of the MES",
            trigger: ".o_mes_section_backends tr[data-row='Tour MES'] td:nth-child(5) a.o_mes_cell_link",
            run: "click",
        },
        {
            trigger: ".o_list_view .o_data_row:contains('Order export')",
        },
    ],
});

// A planner fixes, from the dashboard, what an order's report waits for: a lot Odoo
// does not know yet. One click opens the lot to create, named as the MES named it.
tours.add("mes_planner_fixes_a_lot", {
    steps: () => [
        {
            content: "The cause reads as a sentence",
            trigger:
                ".o_mes_section_causes tr:contains('Lot TOUR-LOT-5 (T-HOUS) is not in Odoo yet')",
        },
        {
            content: "Its fix is one click away",
            trigger:
                ".o_mes_section_causes tr:contains('Lot TOUR-LOT-5') a.o_mes_cell_link:contains('Create lot TOUR-LOT-5')",
            run: "click",
        },
        {
            content: "The lot is filled in as the MES named it",
            trigger: ".o_form_view .o_field_widget[name=name] input:value(TOUR-LOT-5)",
        },
        {
            content: "Save it",
            trigger: ".o_form_view .o_form_button_save",
            run: "click",
        },
        {
            content: "Saved",
            trigger: ".o_form_view .o_form_saved",
        },
    ],
});

// An integrator types an MES address Odoo cannot call: refused with a sentence.
tours.add("mes_integrator_bad_url", {
    steps: () => [
        {
            content: "Type an address without a scheme",
            trigger: ".o_form_view .o_field_widget[name=base_url] input",
            run: "edit 127.0.0.1:8602",
        },
        {
            content: "Save",
            trigger: ".o_form_view .o_form_button_save",
            run: "click",
        },
        {
            content: "Refused, saying what to write",
            trigger:
                ".modal:contains(\"MES URL '127.0.0.1:8602': write the address of the MES's API with http:// or https://\")",
        },
        {
            content: "Close the message",
            trigger: ".modal .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "Discard the change",
            trigger: ".o_form_view .o_form_button_cancel",
            run: "click",
        },
        {
            content: "The stored address is unchanged",
            trigger: ".o_form_view .o_field_widget[name=base_url] input:value(http://127.0.0.1)",
        },
    ],
});

// A planner reads where the shop floor lost time, and opens the stop behind a bar.
tours.add("mes_shop_floor_dashboard", {
    steps: () => [
        {
            content: "Downtime by reason, largest first, with its time, stops and share",
            trigger:
                ".o_mes_dashboard[data-dashboard=shopfloor] .o_mes_section_downtime_by_reason .o_mes_pareto_row[data-row='Breakdown (tour)']:contains('45 min · 1 stop · 100%')",
        },
        {
            content: "The work center was available 97% of the last 24 hours",
            trigger:
                ".o_mes_section_availability tr[data-row='Tour Oven'] .o_mes_heat_total:contains('97%')",
        },
        {
            content: "The hour of the stop reads as lost time",
            trigger:
                ".o_mes_section_availability tr[data-row='Tour Oven'] td.o_mes_heat.bg-danger-subtle",
        },
        {
            content: "Look back over 7 days",
            trigger: ".o_mes_filter_period",
            run: "select 7d",
        },
        {
            content: "The figures are of the 7 days",
            trigger: ".o_mes_section_summary .o_mes_section_title:contains('Last 7 days')",
        },
        {
            content: "Open the stops of that reason",
            trigger: ".o_mes_section_downtime_by_reason a.o_mes_row_link:contains('Breakdown (tour)')",
            run: "click",
        },
        {
            content: "The list holds the stop the MES reported",
            trigger: ".o_list_view .o_data_row:contains('Tour Oven'):contains('Breakdown (tour)')",
        },
    ],
});
