/** @odoo-module **/

import { registry } from "@web/core/registry";

const tours = registry.category("web_tour.tours");

// A planner opens an order whose MES reports are held up: the banner says by what, the
// MES status says where the order stands, one click opens the report that waits.
tours.add("mes_planner_order", {
    steps: () => [
        {
            content: "The banner says how many reports wait, and for what",
            trigger:
                ".o_form_view .alert-warning:contains('2 MES report(s) of this order are not posted'):contains('lot TOUR-LOT-7')",
        },
        {
            content: "The order's MES status is a sentence, not a code",
            trigger: ".o_form_view .o_field_widget[name=mes_status]:contains('Being sent')",
        },
        {
            content: "Open the report that holds the others up",
            trigger: ".o_form_view .alert-warning button[name=action_view_mes_stopper]",
            run: "click",
        },
        {
            content: "It waits for the lot, and says when it is tried next",
            trigger:
                ".o_form_view .o_statusbar_status .o_arrow_button_current:contains('Waiting')",
        },
        {
            content: "What the MES reported, in words",
            trigger: ".o_form_view .alert-warning:contains('Waiting for lot TOUR-LOT-7')",
        },
    ],
});
