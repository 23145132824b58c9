import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { validateConfig } from "../../src/config/load.js";
import { createInteropConnector } from "../../src/interop/connector/factory.js";
import { startEmbeddedGatekeeper } from "../../simulator/embedded-gatekeeper.js";
import { KeyVault } from "../../src/vault/key-vault.js";
import { describeError } from "../../src/util/errors.js";
import { createLogger } from "../../src/util/log.js";
import { createTestDatabase } from "../helpers/db.js";
import { ALICE } from "./harness.js";
import { text } from "./provider-user.js";
import { eventually, GK, makeWorld, PHONE, type World } from "./world.js";

const TOKEN = "page-token-0123456789";

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

async function call(
  base: string,
  method: string,
  path: string,
  token: string | null,
  body?: unknown,
) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const type = res.headers.get("content-type") ?? "";
  return {
    status: res.status,
    headers: res.headers,
    json: type.startsWith("application/json")
      ? ((await res.json()) as Record<string, unknown>)
      : {},
  };
}

/** A raw GET with a chosen Host header (fetch does not let one set it). */
function getWithHost(base: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/users`, { headers: { host, authorization: `Bearer ${TOKEN}` } });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("simulator page API: the admin server with web: true", function () {
  this.timeout(30_000);
  let w: World;
  let base: string;

  beforeEach(async function () {
    w = await makeWorld({ admin: { token: TOKEN, web: true } });
    base = String(w.sim.admin?.url);
  });
  afterEach(async function () {
    await w.close();
  });

  it("serves the page and its script with a strict Content-Security-Policy, on every answer", async function () {
    for (const [file, type] of [
      ["/", "text/html"],
      ["/app.js", "text/javascript"],
      ["/style.css", "text/css"],
    ] as const) {
      const res = await fetch(`${base}${file}`);
      assert.equal(res.status, 200, file);
      assert.match(res.headers.get("content-type") ?? "", new RegExp(`^${type}`));
      const csp = res.headers.get("content-security-policy") ?? "";
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'(;|$)/, "no inline script, no other origin");
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff");
      assert.equal(res.headers.get("referrer-policy"), "no-referrer");
    }
    const json = await call(base, "GET", "/users", TOKEN);
    assert.match(json.headers.get("content-security-policy") ?? "", /default-src 'none'/);
    // The page has no inline script or style for the policy to block.
    const html = await (await fetch(`${base}/`)).text();
    assert.doesNotMatch(html, /<script>|<script [^>]*>[^<]|<style|style=|onclick=/);
  });

  it("refuses the page's routes with a wrong, short or missing token", async function () {
    for (const token of [null, "wrong", `${TOKEN.slice(0, -1)}x`, `${TOKEN}x`]) {
      for (const route of ["/users/491701234567/chats", "/verification-codes", "/bindings"]) {
        const got = await call(base, "GET", route, token);
        assert.equal(got.status, 401, `${route} with ${String(token)}`);
        assert.equal(got.json.error, "unauthorized");
      }
    }
    assert.equal((await call(base, "GET", "/verification-codes", TOKEN)).status, 200);
  });

  it("refuses a request naming another host, so a rebound DNS name cannot reach it", async function () {
    const port = new URL(base).port;
    assert.equal(await getWithHost(base, `evil.example:${port}`), 421);
    assert.equal(await getWithHost(base, "127.0.0.1"), 421, "the port is part of the host");
    assert.equal(await getWithHost(base, `127.0.0.1:${port}`), 200);
    assert.equal(await getWithHost(base, `localhost:${port}`), 200);
  });

  it("lists a message request as a pending chat with both sides of it, and its acceptance", async function () {
    const { stanza } = await w.alice.message(GK, text("hi from the bridge"));
    await w.provider.send(stanza);
    const chats = await eventually(async () => {
      const got = await call(base, "GET", "/users/491701234567/chats", TOKEN);
      const list = got.json.chats as { jid: string; state: string; messages: number }[];
      // The conversation exists before the user has decrypted and logged the message: wait for both.
      return list.some((c) => c.messages > 0) ? list : undefined;
    });
    assert.deepEqual(
      chats.map((c) => [c.jid, c.state, c.messages]),
      [[ALICE, "pending", 1]],
    );
    const accepted = await call(
      base,
      "POST",
      `/users/491701234567/requests/${ALICE}/accept`,
      TOKEN,
    );
    assert.equal(accepted.status, 200);
    await call(base, "POST", "/users/491701234567/send", TOKEN, {
      type: "text",
      to: ALICE,
      text: "hello back",
    });
    const chat = await call(
      base,
      "GET",
      `/users/491701234567/chats/${encodeURIComponent(ALICE)}`,
      TOKEN,
    );
    assert.equal(chat.json.state, "accepted");
    const entries = chat.json.entries as {
      id: number;
      kind: string;
      data: Record<string, unknown>;
    }[];
    assert.deepEqual(
      entries.filter((e) => e.kind === "message" || e.kind === "sent").map((e) => e.kind),
      ["message", "sent"],
    );
    // What the user sent is in the chat, not among what it received (the admin API's meaning).
    const received = await w.sim.users.received(PHONE);
    assert.ok(received.every((r) => r.kind !== "sent"));
    // Polling after the last id returns nothing new.
    const last = entries[entries.length - 1]?.id ?? 0;
    const after = await call(
      base,
      "GET",
      `/users/491701234567/chats/${encodeURIComponent(ALICE)}?after=${last}`,
      TOKEN,
    );
    assert.deepEqual(after.json.entries, []);
  });

  it("answers a broken percent-encoding in a JID with 400, not a server error", async function () {
    const got = await call(base, "GET", "/users/491701234567/chats/a%E0%A4%A", TOKEN);
    assert.deepEqual([got.status, got.json.error], [400, "invalid-request"]);
  });

  it("blocks and unblocks a contact, and the chat says so", async function () {
    await call(base, "POST", "/users/491701234567/blocks", TOKEN, { jid: ALICE });
    const blocked = await call(
      base,
      "GET",
      `/users/491701234567/chats/${encodeURIComponent(ALICE)}`,
      TOKEN,
    );
    assert.equal(blocked.json.blocked, true);
    const list = await call(base, "GET", "/users/491701234567/blocks", TOKEN);
    assert.deepEqual(list.json.blocked, [ALICE]);
    await call(base, "DELETE", `/users/491701234567/blocks/${encodeURIComponent(ALICE)}`, TOKEN);
    const unblocked = await call(
      base,
      "GET",
      `/users/491701234567/chats/${encodeURIComponent(ALICE)}`,
      TOKEN,
    );
    assert.equal(unblocked.json.blocked, false);
  });

  it("serves a received image decrypted, as an attachment of a safe type", async function () {
    const png = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");
    await call(base, "POST", "/users/491701234567/send", TOKEN, {
      type: "media",
      to: ALICE,
      kind: "image",
      data: png.toString("base64"),
      mime: "image/png",
    });
    const chat = await call(
      base,
      "GET",
      `/users/491701234567/chats/${encodeURIComponent(ALICE)}`,
      TOKEN,
    );
    const sent = (chat.json.entries as { id: number; kind: string }[]).find(
      (e) => e.kind === "sent",
    );
    assert.ok(sent !== undefined);
    const res = await fetch(`${base}/users/491701234567/media/${sent.id}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "image/png");
    assert.equal(res.headers.get("content-disposition"), "attachment");
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), png);
    const none = await fetch(`${base}/users/491701234567/media/999999`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(none.status, 404);
  });
});

describe("the embedded simulator with simulator.web: true (issue 14, point 11)", function () {
  this.timeout(30_000);

  it("names simulator.port in one line when the port is taken", async function () {
    const dir = await mkdtemp(path.join(tmpdir(), "mwi-embedded-web-"));
    const db = await createTestDatabase("sqlite");
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const config = validateConfig(
        {
          homeserver: { url: "http://127.0.0.1:1", domain: "example.org" },
          interop: { mode: "embedded", embedded_data_dir: dir },
          simulator: { web: true, port },
        },
        "config.yaml",
      );
      const connector = createInteropConnector(
        config,
        { report: async () => undefined },
        {
          db: db.db,
          vault: KeyVault.fromKey(Buffer.alloc(32, 9)),
          log: createLogger({ level: "silent", format: "json" }),
          startEmbedded: startEmbeddedGatekeeper,
        },
      );
      await assert.rejects(connector.start(), (err: Error) => {
        assert.equal(
          describeError(err),
          `simulator.port ${port} on 127.0.0.1 is in use: choose another port or stop what uses it`,
        );
        return true;
      });
      await connector.stop();
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
      await db.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("serves the page and the admin API on the configured loopback port, behind a token logged once at info", async function () {
    const dir = await mkdtemp(path.join(tmpdir(), "mwi-embedded-web-"));
    const db = await createTestDatabase("sqlite");
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString("utf8").split("\n")) {
          if (line.trim() !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
        }
        callback();
      },
    });
    const port = await freePort();
    const config = validateConfig(
      {
        homeserver: { url: "http://127.0.0.1:1", domain: "example.org" },
        interop: { mode: "embedded", embedded_data_dir: dir },
        simulator: { web: true, port },
      },
      "config.yaml",
    );
    const connector = createInteropConnector(
      config,
      { report: async () => undefined },
      {
        db: db.db,
        vault: KeyVault.fromKey(Buffer.alloc(32, 9)),
        log: createLogger({ level: "info", format: "json", destination }),
        startEmbedded: startEmbeddedGatekeeper,
      },
    );
    await connector.start();
    try {
      const logged = lines.filter((l) => String(l["msg"]).startsWith("simulator page"));
      assert.equal(logged.length, 1, "the address is logged once");
      assert.equal(logged[0]?.["level"], "info");
      const url = new URL(String(logged[0]?.["url"]));
      assert.equal(url.host, `127.0.0.1:${port}`);
      const token = new URLSearchParams(url.hash.slice(1)).get("token") ?? "";
      assert.ok(token.length >= 32, "a random token of at least 24 bytes");
      const others = lines.filter((l) => l !== logged[0]);
      assert.ok(!JSON.stringify(others).includes(token), "the token appears in no other line");
      const base = `http://127.0.0.1:${port}`;
      assert.equal((await fetch(`${base}/`)).status, 200);
      assert.equal((await call(base, "GET", "/users", null)).status, 401);
      assert.equal((await call(base, "GET", "/users", token)).status, 200);
      // Codes guard the bridge's own logins here: behind the token too, unlike Appendix A's.
      assert.equal(
        (await call(base, "GET", "/_test/verification-codes/491701234567", null)).status,
        401,
      );
      const created = await call(base, "POST", "/users", token, { phone: "+491709999999" });
      assert.equal(created.status, 201);
      assert.equal((await call(base, "GET", "/verification-codes", token)).status, 200);
    } finally {
      await connector.stop();
      await db.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
