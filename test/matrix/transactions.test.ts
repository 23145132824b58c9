import assert from "node:assert/strict";
import { createServer } from "node:net";
import { TransactionalAppService, type Transaction } from "../../src/matrix/transactions.js";
import { silentLogger } from "../../src/util/log.js";
import { createTestHomeserver, failFirstPushes, type TestHomeserver } from "../homeserver/index.js";
import { api, enc } from "../homeserver/testHelpers.js";

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("transactions are acknowledged only after they were handled", function () {
  this.timeout(30_000);
  let hs: TestHomeserver;
  let appService: TransactionalAppService;
  let port: number;
  let room: string;
  let token: string;
  const seen: Transaction[] = [];
  let failuresLeft = 0;

  before(async function () {
    port = await freePort();
    appService = new TransactionalAppService("hs-token", silentLogger());
    appService.setTransactionHandler(async (txn) => {
      seen.push(txn);
      if (failuresLeft > 0) {
        failuresLeft -= 1;
        throw new Error("database unavailable");
      }
    });
    await appService.listen(port, "127.0.0.1", 10);
    hs = createTestHomeserver({
      serverName: "hs.test",
      appservices: [
        {
          id: "wa",
          url: `http://127.0.0.1:${port}`,
          as_token: "as-token",
          hs_token: "hs-token",
          sender_localpart: "wabot",
          namespaces: {
            users: [{ exclusive: true, regex: "@_wa_.*:hs\\.test" }],
            aliases: [],
            rooms: [],
          },
          rate_limited: false,
        },
      ],
      retryInitialMs: 20,
      retryMaxMs: 100,
    });
    await hs.start();
    const user = hs.registerUser("carol");
    token = user.accessToken;
    const created = await api(hs.url, "POST", "/_matrix/client/v3/createRoom", {
      token,
      body: { invite: ["@wabot:hs.test"] },
    });
    room = created.json["room_id"] as string;
    const joined = await api(hs.url, "POST", `/_matrix/client/v3/join/${enc(room)}`, {
      token: "as-token",
      body: {},
    });
    assert.equal(joined.status, 200, JSON.stringify(joined.json));
    await hs.appserviceIdle("wa");
  });
  after(async function () {
    await hs.stop();
    await appService.close();
  });

  async function send(body: string, txnId: string): Promise<string> {
    const sent = await api(
      hs.url,
      "PUT",
      `/_matrix/client/v3/rooms/${enc(room)}/send/m.room.message/${txnId}`,
      {
        token,
        body: { msgtype: "m.text", body },
      },
    );
    return sent.json["event_id"] as string;
  }

  it("a handler failure answers 500, and the homeserver retries the same transaction until it succeeds", async function () {
    seen.length = 0;
    failuresLeft = 2;
    const eventId = await send("must not be lost", "a1");
    await hs.appserviceIdle("wa");
    const attempts = seen.filter((t) => t.events.some((e) => e.event_id === eventId));
    assert.equal(attempts.length, 3);
    assert.equal(new Set(attempts.map((t) => t.id)).size, 1, "the same transaction id each time");
    const delivered = hs
      .deliveredTransactions("wa")
      .find((t) => t.events.some((e) => e.event_id === eventId));
    assert.ok(delivered, "the homeserver counts it as delivered only after success");
  });

  it("a repeat of an acknowledged transaction is answered without handling it again", async function () {
    seen.length = 0;
    hs.failAppservicePushes(failFirstPushes(1, { status: 500, deliver: true }));
    const eventId = await send("once", "a2");
    await hs.appserviceIdle("wa");
    hs.failAppservicePushes(undefined);
    assert.equal(seen.filter((t) => t.events.some((e) => e.event_id === eventId)).length, 1);
  });

  it("a wrong homeserver token is refused", async function () {
    const answer = await api(`http://127.0.0.1:${port}`, "PUT", "/_matrix/app/v1/transactions/x1", {
      token: "wrong",
      body: { events: [] },
    });
    assert.equal(answer.status, 403);
  });
});
