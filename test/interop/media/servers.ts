import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A throw-away loopback HTTP server for client edge cases, counting the requests it saw. */
export interface TestServer {
  readonly origin: string;
  readonly hits: () => number;
  readonly close: () => Promise<void>;
}

export async function startTestServer(
  handler: (req: IncomingMessage, res: ServerResponse, hit: number) => void,
): Promise<TestServer> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    handler(req, res, hits);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    hits: () => hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
