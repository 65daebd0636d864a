/** @odoo-module **/

import { Component, onWillStart, onWillUnmount, useState } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { Layout } from "@web/search/layout";
import { standardActionServiceProps } from "@web/webclient/actions/action_service";

/**
 * One MES dashboard (planner, warehouse, shop floor or integration health). The server
 * (mes.dashboard.get_dashboard) computes every figure together with the window
 * action that lists what it counts; this component shows them and opens that
 * list on a click. The reader filters by period, plant and MES; it refreshes itself
 * every minute with the same filters.
 */
export class MesDashboard extends Component {
    static template = "mes_base.Dashboard";
    static components = { Layout };
    static props = { ...standardActionServiceProps };

    setup() {
        this.orm = useService("orm");
        this.actionService = useService("action");
        this.state = useState({
            data: null,
            loading: false,
            filters: { period: "1d", company_ids: [], backend_ids: [] },
        });
        onWillStart(() => this.load());
        const timer = setInterval(() => this.load(), 60000);
        onWillUnmount(() => clearInterval(timer));
    }

    get dashboard() {
        return (this.props.action.params || {}).dashboard || "planner";
    }

    async load() {
        this.state.loading = true;
        try {
            this.state.data = await this.orm.call(
                "mes.dashboard",
                "get_dashboard",
                [this.dashboard],
                { filters: this.state.filters }
            );
        } finally {
            this.state.loading = false;
        }
    }

    setFilter(name, value) {
        if (name === "period") {
            this.state.filters.period = value;
        } else {
            this.state.filters[name] = value ? [parseInt(value)] : [];
        }
        this.load();
    }

    open(action) {
        if (action) {
            this.actionService.doAction(action);
        }
    }

    sectionClass(section) {
        return section.kind === "tiles" || section.wide ? "col-12" : "col-12 col-xxl-6";
    }

    /** The top of the value axis: a round number at or above the largest bar. */
    axisTop(section) {
        const max = Math.max(0, ...section.points.flatMap((point) => point.bars.map((bar) => bar.value)));
        if (!max) {
            return 1;
        }
        const power = 10 ** Math.floor(Math.log10(max));
        return [1, 2, 2.5, 5, 10].map((step) => step * power).find((top) => top >= max);
    }

    axisTicks(section) {
        const top = this.axisTop(section);
        return Number.isInteger(top / 2) ? [top, top / 2, 0] : [top, 0];
    }

    barHeight(section, value) {
        return `${(100 * value) / this.axisTop(section)}%`;
    }

    showValues(section) {
        return section.points.length <= 24;
    }
}

registry.category("actions").add("mes_base.dashboard", MesDashboard);
