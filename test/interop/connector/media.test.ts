import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { NeutralMedia, RemoteUserId } from "../../../src/core/network.js";
import type { InteropLogin } from "../../../src/interop/connector/login.js";
import { matrixUserId, phoneNumber } from "../../../src/util/ids.js";
import { eventually, startWorld, type World } from "./harness.js";

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

describe("interop connector media", function () {
  this.timeout(20_000);
  let world: World;
  let login: InteropLogin;
  const bobPhone = phoneNumber("+491701234567");

  beforeEach(async function () {
    world = await startWorld();
    await world.sim.users.create({ phone: bobPhone, devices: 1 });
    const process = world.connector.createLogin(matrixUserId("@carol:example.org"), "handle");
    await process.start();
    const done = await process.submit("handle", { handle: "Carol" });
    login = done.type === "complete" ? (done.login as InteropLogin) : assert.fail();
  });

  afterEach(async function () {
    await world.stop();
  });

  it("a received file opens lazily as its verified plaintext, with its caption", async function () {
    const data = randomBytes(5000);
    await world.sim.users.sendMedia(
      bobPhone,
      login.jid,
      { kind: "document", data, type: "application/pdf", filename: "report.pdf" },
      "the report",
    );
    await eventually(() => world.core.of("message").length === 1, "the file reported");
    const content = world.core.of("message")[0]?.content;
    assert.equal(content?.type, "media");
    if (content?.type !== "media") return;
    assert.equal(content.media.fileName, "report.pdf");
    assert.equal(content.caption?.text, "the report");
    assert.deepEqual(await collect(await content.media.open()), data);
    assert.deepEqual(await collect(await content.media.open()), data, "opens again");
  });

  it("a sent file is encrypted, uploaded and referenced so that the contact can decrypt it", async function () {
    const data = randomBytes(3000);
    const media: NeutralMedia = {
      kind: "document",
      mimeType: "text/plain",
      size: data.length,
      fileName: "notes.txt",
      open: async () =>
        (async function* () {
          yield data;
        })(),
    };
    const bob = world.sim.users.jidOf(bobPhone) as string as RemoteUserId;
    const id = await login.sendMessage(bob, { type: "media", media });
    await eventually(async () => {
      const got = await world.sim.users.received(bobPhone, "message");
      return got.some((e) => e.data["originId"] === id);
    }, "bob got the file");
    const [entry] = await world.sim.users.received(bobPhone, "message");
    const element = (
      entry?.data["content"] as { kind: string; media?: Record<string, unknown> }[]
    ).find((e) => e.kind === "media");
    const m = element?.media;
    assert.ok(m !== undefined, "a media element");
    assert.equal(m["filename"], "notes.txt");
    const b64 = (v: unknown) => Buffer.from(String(v), "base64");
    const dir = await mkdtemp(path.join(tmpdir(), "conn-media-"));
    try {
      await world.connector.engine.media.download(
        {
          kind: "document",
          url: String(m["url"]),
          mediaKey: b64(m["key"]),
          size: Number(m["size"]),
          sha256: b64(m["sha256"]),
          encSha256: b64(m["encSha256"]),
        },
        path.join(dir, "plain"),
      );
      assert.deepEqual(await readFile(path.join(dir, "plain")), data);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
