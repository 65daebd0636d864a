/** @odoo-module **/

import { Component, onWillStart, onWillUnmount, useState } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { Layout } from "@web/search/layout";
import { standardActionServiceProps } from "@web/webclient/actions/action_service";

/**
 * One MES dashboard (planner, warehouse or integration health). The server
 * (mes.dashboard.get_dashboard) computes every figure together with the window
 * action that lists what it counts; this component shows them and opens that
 * list on a click. It refreshes itself every minute.
 */
export class MesDashboard extends Component {
    static template = "mes_base.Dashboard";
    static components = { Layout };
    static props = { ...standardActionServiceProps };

    setup() {
        this.orm = useService("orm");
        this.actionService = useService("action");
        this.state = useState({ data: null, loading: false });
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
            this.state.data = await this.orm.call("mes.dashboard", "get_dashboard", [
                this.dashboard,
            ]);
        } finally {
            this.state.loading = false;
        }
    }

    open(action) {
        if (action) {
            this.actionService.doAction(action);
        }
    }

    barHeight(section, value) {
        const max = Math.max(1, ...section.points.flatMap((point) => point.values));
        return `${Math.round((100 * value) / max)}%`;
    }
}

registry.category("actions").add("mes_base.dashboard", MesDashboard);
