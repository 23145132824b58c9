export { BridgeMetrics, type ScrapeSources } from "./metrics.js";
export { startMetricsServer, type MetricsServer } from "./server.js";
