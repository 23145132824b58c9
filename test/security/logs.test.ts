import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger } from "../../src/util/log.js";
import { OpsWorld, waitFor } from "../ops/world.js";

const SECRET = "provisioning-secret-for-the-log-test-0123456789";
const MY_PHONE = "+491700000041";
const PHONE_A = "+491701111151";
const TO_WHATSAPP = "confidential-text-to-whatsapp-7q3";
const TO_MATRIX = "confidential-text-to-matrix-9z1";

/**
 * A whole conversation (bot login with a verification code, a chat, a message each way, and
 * provisioning calls with a user token and the shared secret) with the bridge logging at info, as
 * in production: no message text, code, token, secret or key may appear in what it logged.
 */
describe("logs at info level carry no content, tokens or keys", function () {
  this.timeout(180_000);
  let world: OpsWorld;
  const lines: string[] = [];

  before(async function () {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString("utf8"));
        callback();
      },
    });
    world = await OpsWorld.start("logs", {
      config: { provisioning: { shared_secret: SECRET } },
      log: createLogger({ level: "info", format: "json", destination: sink }),
    });
  });

  after(async function () {
    await world?.stop();
  });

  it("a conversation leaves nothing secret in the logs", async function () {
    const [a] = await world.createWhatsAppUsers(PHONE_A);
    assert.ok(a !== undefined);
    await world.command("login", /./);
    await world.command("phone", /phone number/i);
    await world.command(MY_PHONE, /code/i);
    const code = await world.verificationCode(MY_PHONE);
    await world.command(code, /^Logged in/);
    const portal = await world.startChat(PHONE_A);
    await world.sendText(portal, TO_WHATSAPP);
    await waitFor("A to receive the text", async () =>
      (await a.received("message")).some((r) => JSON.stringify(r.data).includes(TO_WHATSAPP))
        ? true
        : undefined,
    );
    await a.send({ type: "text", to: world.myJid, text: TO_MATRIX });
    await world.sees(portal, "A's text", (e) => e.content["body"] === TO_MATRIX);
    const provision = `${world.bridgeUrl}/_matrix/provision/v3/whoami`;
    for (const token of [world.world.user.accessToken, SECRET, "a-wrong-token-for-the-log"]) {
      await fetch(`${provision}?user_id=${encodeURIComponent(world.world.user.userId)}`, {
        headers: { authorization: `Bearer ${token}` },
      });
    }
    await fetch(`${world.bridgeUrl}/_matrix/app/v1/users/x?access_token=wrong-hs-token-xyz`);

    const text = lines.join("");
    assert.ok(
      lines.some((l) => l.includes('"logged in"')) &&
        lines.some((l) => l.includes("portal created")),
      "the bridge logged the conversation at info",
    );
    const secrets: Record<string, string> = {
      "the text sent to WhatsApp": TO_WHATSAPP,
      "the text sent to Matrix": TO_MATRIX,
      "the verification code": `"${code}"`,
      "the user's access token": world.world.user.accessToken,
      "the provisioning secret": SECRET,
      "a wrong bearer token": "a-wrong-token-for-the-log",
      "a wrong hs_token": "wrong-hs-token-xyz",
      "the as_token": world.world.registration.as_token,
      "the hs_token": world.world.registration.hs_token,
      "the encryption key": String(process.env["MWI_DEMO_KEY"]),
    };
    for (const [what, secret] of Object.entries(secrets)) {
      assert.ok(!text.includes(secret), `${what} appears in the logs`);
    }
  });
});
