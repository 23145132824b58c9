import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { closeHomeserverPools, homeserverRequest } from "../../src/matrix/http.js";
import { transientWait } from "../../src/matrix/retry.js";

describe("homeserver event sends through the keep-alive pool", function () {
  let server: http.Server;
  let url: string;
  const seen: { method?: string; url?: string; auth?: string; body: string; socket: unknown }[] =
    [];
  let answer: (res: http.ServerResponse) => void = (res) => res.end("{}");

  before(async function () {
    server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      req.on("end", () => {
        seen.push({
          method: req.method,
          url: req.url,
          auth: req.headers.authorization,
          body,
          socket: req.socket.remotePort,
        });
        answer(res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async function () {
    await closeHomeserverPools();
    await new Promise((resolve) => server.close(resolve));
  });
  beforeEach(function () {
    seen.length = 0;
  });

  it("sends as the ghost with the appservice token and reuses the connection", async function () {
    answer = (res) => res.end(JSON.stringify({ event_id: "$one" }));
    const client = { homeserverUrl: url, accessToken: "as-token" };
    const path = "/_matrix/client/v3/rooms/!r%3Ahs/send/m.room.message/t1";
    assert.deepEqual(await homeserverRequest(client, "@ghost:hs", "PUT", path, { body: "hi" }), {
      event_id: "$one",
    });
    for (let i = 0; i < 19; i++) {
      await homeserverRequest(client, "@ghost:hs", "PUT", path, { body: "again" });
    }
    assert.equal(seen[0]?.method, "PUT");
    assert.equal(seen[0]?.url, `${path}?user_id=%40ghost%3Ahs`);
    assert.equal(seen[0]?.auth, "Bearer as-token");
    assert.deepEqual(JSON.parse(seen[0]?.body ?? ""), { body: "hi" });
    const connections = new Set(seen.map((r) => r.socket)).size;
    assert.ok(connections <= 8, `20 sends over ${connections} kept-alive connections`);
  });

  it("a 429 carries its wait and a Matrix error its errcode, as the retry policy reads them", async function () {
    const client = { homeserverUrl: url, accessToken: "as-token" };
    answer = (res) => {
      res.writeHead(429, { "retry-after": "2", "content-type": "application/json" });
      res.end(JSON.stringify({ errcode: "M_LIMIT_EXCEEDED", error: "slow down" }));
    };
    const limited = await homeserverRequest(client, undefined, "PUT", "/x", {}).then(
      () => assert.fail("a 429 must throw"),
      (err: unknown) => err,
    );
    assert.equal(transientWait(limited), 2000);
    answer = (res) => {
      res.writeHead(403);
      res.end(JSON.stringify({ errcode: "M_FORBIDDEN", error: "not in room" }));
    };
    const forbidden = (await homeserverRequest(client, undefined, "PUT", "/x", {}).catch(
      (err: unknown) => err,
    )) as { errcode?: string; statusCode?: number };
    assert.equal(forbidden.errcode, "M_FORBIDDEN");
    assert.equal(transientWait(forbidden), undefined, "a 403 is not retried");
    answer = (res) => {
      res.writeHead(502);
      res.end("<html>bad gateway</html>");
    };
    const down = await homeserverRequest(client, undefined, "PUT", "/x", {}).catch(
      (err: unknown) => err,
    );
    assert.equal(transientWait(down), 0, "a 5xx is retried");
  });

  it("an unreachable homeserver is a transient network error", async function () {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const err = await homeserverRequest(
      { homeserverUrl: `http://127.0.0.1:${port}`, accessToken: "t" },
      undefined,
      "PUT",
      "/x",
      {},
    ).catch((e: unknown) => e);
    assert.equal(transientWait(err), 0, `retried: ${String((err as { code?: unknown }).code)}`);
  });
});
