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
