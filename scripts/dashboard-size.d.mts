/** Types of dashboard-size.mjs (plain JavaScript: the build runs it before anything compiles). */
export declare const DASHBOARD_JS_BUDGET_BYTES: number;
export declare function initialDashboardJs(dir: string): number;
