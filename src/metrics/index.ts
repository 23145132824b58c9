export { BridgeMetrics } from "./metrics.js";
export { startMetricsServer, type MetricsServer } from "./server.js";
