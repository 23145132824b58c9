import assert from "node:assert/strict";
import { request } from "node:http";
import { createServer } from "node:net";
import { TransactionalAppService } from "../../src/matrix/transactions.js";
import { silentLogger } from "../../src/util/log.js";

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function call(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: { errcode?: string } }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        headers: { "content-type": "application/json", ...headers },
      },
      (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString()));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: text === "" ? {} : JSON.parse(text) }),
        );
      },
    );
    req.on("error", reject);
    req.end(method === "PUT" ? JSON.stringify({ events: [] }) : undefined);
  });
}

describe("the homeserver token", function () {
  let port: number;
  let appService: TransactionalAppService;
  const handled: string[] = [];

  before(async function () {
    port = await freePort();
    appService = new TransactionalAppService("the-right-token", silentLogger());
    appService.setTransactionHandler(async (txn) => {
      handled.push(txn.id);
    });
    await appService.listen(port, "127.0.0.1", 10);
  });
  after(async function () {
    await appService.close();
  });

  it("is accepted in the Authorization header (current spec) and as access_token (Synapse 1.67)", async function () {
    const header = await call(port, "PUT", "/_matrix/app/v1/transactions/t1", {
      authorization: "Bearer the-right-token",
    });
    assert.equal(header.status, 200);
    const query = await call(port, "PUT", "/transactions/t2?access_token=the-right-token");
    assert.equal(query.status, 200);
    assert.deepEqual(handled, ["t1", "t2"]);
  });

  it("a wrong token is refused with 403 M_FORBIDDEN and nothing is handled", async function () {
    for (const token of ["the-wrong-token", "the-right-toke", "the-right-tokenX", ""]) {
      const res = await call(port, "PUT", "/_matrix/app/v1/transactions/bad", {
        authorization: `Bearer ${token}`,
      });
      assert.ok(res.status === 403 || res.status === 401, `token ${JSON.stringify(token)}`);
    }
    const wrong = await call(port, "PUT", "/_matrix/app/v1/transactions/bad", {
      authorization: "Bearer the-wrong-token",
    });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.errcode, "M_FORBIDDEN");
    assert.ok(!handled.includes("bad"));
  });

  it("a missing token is refused with 401 M_MISSING_TOKEN", async function () {
    const res = await call(port, "PUT", "/_matrix/app/v1/transactions/none");
    assert.equal(res.status, 401);
    assert.equal(res.body.errcode, "M_MISSING_TOKEN");
  });

  it("the user query route is guarded by the same check", async function () {
    const res = await call(port, "GET", "/_matrix/app/v1/users/@x:example.org", {
      authorization: "Bearer nope",
    });
    assert.equal(res.status, 403);
    assert.equal(res.body.errcode, "M_FORBIDDEN");
  });
});
