/** @odoo-module **/

import { registry } from "@web/core/registry";

// Finance opens the order with a manual posting and explains it.
registry.category("web_tour.tours").add("mes_reconciliation_explain", {
    steps: () => [
        {
            content: "The order with a variance is listed",
            trigger: ".o_list_view .o_data_row:contains('Variance') td[name=production_id]",
            run: "click",
        },
        {
            content: "Its lines show the scrap nobody reported",
            trigger: ".o_form_view div[name=line_ids] .o_data_row:contains('Scrap')",
        },
        {
            trigger: ".o_form_view .o_notebook a[name=explanation]",
            run: "click",
        },
        {
            trigger: ".o_form_view .alert-warning:contains('say why')",
        },
        {
            trigger: ".o_form_view div[name=explanation] textarea",
            run: "edit Manual scrap after inspection, approved by QA.",
        },
        {
            trigger: ".o_form_view .o_form_button_save",
            run: "click",
        },
        {
            content: "Explained: nothing left to say",
            trigger: ".o_form_view .o_form_saved .o_notebook:not(:has(.alert-warning:visible))",
        },
    ],
});

// Finance reads a lot-tracked component's usage variance on one line, its lots below.
registry.category("web_tour.tours").add("mes_reconciliation_lots", {
    steps: () => [
        {
            content: "The component's own line carries its usage variance",
            trigger:
                ".o_form_view div[name=line_ids] .o_data_row:contains('Housing'):not(:contains('LOT-')) td[name=usage_variance_qty]:contains('1.00')",
        },
        {
            content: "Its value, once",
            trigger:
                ".o_form_view div[name=line_ids] .o_data_row:contains('Housing'):not(:contains('LOT-')) td[name=usage_variance_value]:contains('10.00')",
        },
        {
            content: "Its lots read as a breakdown: what each reported and posted, no usage of their own",
            trigger:
                ".o_form_view div[name=line_ids] .o_data_row:contains('LOT-A'):contains('4.00') td[name=usage_variance_qty]:not(:contains('.'))",
        },
        {
            trigger:
                ".o_form_view div[name=line_ids] .o_data_row:contains('LOT-B'):contains('2.00') td[name=usage_variance_value]:not(:contains('.'))",
        },
    ],
});
