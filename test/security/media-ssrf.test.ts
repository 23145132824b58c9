import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { phoneNumber, type BareJid } from "../../src/util/ids.js";
import { OpsWorld, waitFor } from "../ops/world.js";

const MY_PHONE = "+491700000051";
const PHONE_A = "+491701111161";

/**
 * A WhatsApp user sends media whose URL points somewhere else than the gatekeeper's announced
 * media origin: a server inside the bridge's network (here another loopback port). The bridge
 * never contacts it; the user is shown that a file could not be received, and later messages
 * still arrive. (Before this test, such a message was left unacknowledged and redelivered
 * forever, and the user saw nothing.)
 */
describe("media is fetched only from the gatekeeper's media origin (no SSRF)", function () {
  this.timeout(120_000);
  let world: OpsWorld;
  let internal: Server;
  const hits: string[] = [];

  before(async function () {
    internal = createServer((req, res) => {
      hits.push(req.url ?? "");
      res.writeHead(200).end("secret internal data");
    });
    await new Promise<void>((resolve) => internal.listen(0, "127.0.0.1", resolve));
    world = await OpsWorld.start("ssrf");
    await world.createWhatsAppUsers(PHONE_A);
    await world.login(MY_PHONE);
  });

  after(async function () {
    await world?.stop();
    await new Promise<void>((resolve) => internal.close(() => resolve()));
  });

  it("a crafted media URL is refused without a request, and the chat goes on", async function () {
    const port = (internal.address() as AddressInfo).port;
    const targets = [
      `http://127.0.0.1:${port}/internal-admin`,
      `http://user@127.0.0.1:${port}/with-userinfo`,
      `https://127.0.0.1:${port}/other-scheme`,
      "file:///etc/passwd",
    ];
    const before = new Set(await world.me.invites());
    for (const url of targets) {
      await world.world.sim.users.send(phoneNumber(PHONE_A), world.myJid as BareJid, [
        {
          kind: "media",
          media: {
            kind: "image",
            url,
            type: "image/png",
            size: 10,
            sha256: new Uint8Array(32),
            encSha256: new Uint8Array(32),
            key: new Uint8Array(32),
            width: 1,
            height: 1,
            duration: undefined,
            voice: false,
            filename: "x.png",
            thumbnail: undefined,
            waveform: undefined,
          },
        },
      ]);
    }
    await world.world.sim.users.send(phoneNumber(PHONE_A), world.myJid as BareJid, [
      { kind: "body", text: "after the crafted media" },
    ]);
    const room = await waitFor("A's chat", async () =>
      (await world.me.invites()).find((r) => !before.has(r)),
    );
    await world.me.join(room);
    await world.sees(
      room,
      "the text after the media",
      (e) => e.content["body"] === "after the crafted media",
    );
    assert.deepEqual(hits, [], "the internal server was never contacted");
    const events = await world.me.events(room);
    const notices = events.filter((e) => /could not be received/.test(String(e.content["body"])));
    assert.equal(notices.length, targets.length, "each refused file is named, file: URLs too");
  });
});
