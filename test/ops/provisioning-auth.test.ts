import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { ProvisioningAuth } from "../../src/provisioning/auth.js";

const SECRET = "a-provisioning-shared-secret";
const BOT = "@whatsappbot:example.org";
const GHOST = "@whatsapp_491701234567:example.org";
const ALICE = "@alice:example.org";

/** Provisioning's two ways in, against a homeserver that answers /account/whoami from a table. */
describe("provisioning authentication acts only for real users, with short-lived token checks", function () {
  let server: Server;
  let url = "";
  const tokens = new Map<string, string>([
    ["alice-token", ALICE],
    ["as-token", BOT],
  ]);
  let whoamiCalls = 0;
  let now = 1_000_000;

  before(async function () {
    server = createServer((req, res) => {
      whoamiCalls += 1;
      const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
      const user = tokens.get(token);
      res.setHeader("content-type", "application/json");
      if (user === undefined) {
        res.statusCode = 401;
        res.end(JSON.stringify({ errcode: "M_UNKNOWN_TOKEN", error: "Unknown token" }));
      } else {
        res.end(JSON.stringify({ user_id: user }));
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async function () {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const auth = () =>
    new ProvisioningAuth({
      sharedSecret: SECRET,
      homeserverUrl: url,
      isBridgeUser: (user) => user === BOT || user.startsWith("@whatsapp_"),
      now: () => now,
    });

  async function refusal(p: Promise<unknown>): Promise<string> {
    try {
      await p;
    } catch (err) {
      return `${(err as { status: number }).status} ${(err as { errcode: string }).errcode}`;
    }
    return "accepted";
  }

  it("the shared secret may not name the bot or a ghost", async function () {
    const a = auth();
    assert.equal(await refusal(a.authenticate(`Bearer ${SECRET}`, BOT)), "403 M_FORBIDDEN");
    assert.equal(await refusal(a.authenticate(`Bearer ${SECRET}`, GHOST)), "403 M_FORBIDDEN");
    assert.deepEqual(await a.authenticate(`Bearer ${SECRET}`, ALICE), {
      user: ALICE,
      by: "secret",
    });
  });

  it("the as_token is not a user credential", async function () {
    assert.equal(
      await refusal(auth().authenticate("Bearer as-token", undefined)),
      "403 M_FORBIDDEN",
    );
  });

  it("a revoked token stops working within 30 s", async function () {
    const a = auth();
    assert.deepEqual(await a.authenticate("Bearer alice-token", undefined), {
      user: ALICE,
      by: "token",
    });
    tokens.delete("alice-token");
    now += 31_000;
    assert.equal(
      await refusal(a.authenticate("Bearer alice-token", undefined)),
      "401 M_UNKNOWN_TOKEN",
    );
  });

  it("a refused token is refused again without asking the homeserver, for a few seconds", async function () {
    const a = auth();
    const before = whoamiCalls;
    assert.equal(await refusal(a.authenticate("Bearer guess-1", undefined)), "401 M_UNKNOWN_TOKEN");
    assert.equal(await refusal(a.authenticate("Bearer guess-1", undefined)), "401 M_UNKNOWN_TOKEN");
    assert.equal(whoamiCalls, before + 1);
    now += 6_000;
    tokens.set("guess-1", ALICE);
    assert.deepEqual(await a.authenticate("Bearer guess-1", undefined), {
      user: ALICE,
      by: "token",
    });
  });
});
