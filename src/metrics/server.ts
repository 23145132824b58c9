import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { StartupError, describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import type { BridgeMetrics } from "./metrics.js";

export interface MetricsServer {
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * The metrics listener (config `metrics`): GET /metrics only, on its own address and port so that
 * it can stay private while the appservice port faces the homeserver. Port 0 picks a free one.
 */
export async function startMetricsServer(
  metrics: BridgeMetrics,
  options: { bindAddress: string; port: number; log: Logger },
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "GET" || path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    metrics.render().then(
      ({ contentType, body }) => res.writeHead(200, { "content-type": contentType }).end(body),
      (err: unknown) => {
        options.log.warn({ err: describeError(err) }, "collecting metrics failed");
        res.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable\n");
      },
    );
  });
  // A scrape is small and quick; a client that stalls is cut off rather than held open.
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) =>
      reject(
        new StartupError(
          "metrics-port-unusable",
          `cannot listen for metrics on ${options.bindAddress}:${options.port}: ${describeError(err)}`,
          err,
        ),
      ),
    );
    server.listen(options.port, options.bindAddress, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  options.log.info({ address: options.bindAddress, port }, "metrics listener ready");
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
