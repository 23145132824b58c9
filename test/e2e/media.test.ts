import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { solidPng } from "../../scripts/demo/png.js";
import { bodyOf, E2e, element, type Received, type WhatsAppUser } from "./harness.js";

/** The smallest baseline JPEG (1x1), for thumbnails: §13.2 carries them as JPEG only. */
const JPEG = Buffer.from(
  "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////" +
    "////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQABPxA=",
  "base64",
);
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("base64");
const WAVEFORM = Array.from({ length: 64 }, (_, i) => (i * 7) % 101);

function media(entry: Received): Record<string, unknown> {
  const found = element(entry, "media");
  if (found === undefined) throw new Error(`no media in ${JSON.stringify(entry.data)}`);
  return found["media"] as Record<string, unknown>;
}

describe("e2e: media, locations and contact cards", function () {
  this.timeout(90_000);
  let e: E2e;
  let a: WhatsAppUser;
  let portal: string;

  before(async function () {
    e = await E2e.start();
    a = await e.whatsappUser("+491701111111");
    await e.login();
    portal = await e.openChat(a);
  });
  after(async function () {
    await e?.stop();
  });

  /** Sends a media event from Matrix; resolves to what A received. */
  async function matrixSends(
    msgtype: string,
    data: Buffer,
    mime: string,
    name: string,
    extra: Record<string, unknown> = {},
    info: Record<string, unknown> = {},
  ): Promise<Received> {
    const url = await e.upload(data, mime, name);
    await e.send(portal, {
      msgtype,
      body: name,
      url,
      info: { mimetype: mime, size: data.length, ...info },
      ...extra,
    });
    const digest = sha256(data);
    return e.received(a, `my ${msgtype} at A`, (r) => {
      const m = element(r, "media");
      return (m?.["media"] as Record<string, unknown> | undefined)?.["sha256"] === digest;
    });
  }

  it("an image with a caption and a thumbnail arrives at WhatsApp with its size and type", async function () {
    const png = solidPng(32, 24, [10, 200, 30]);
    const thumb = await e.upload(JPEG, "image/jpeg", "thumb.jpg");
    const got = await matrixSends(
      "m.image",
      png,
      "image/png",
      "green.png",
      { body: "look at this", filename: "green.png" },
      {
        w: 32,
        h: 24,
        thumbnail_url: thumb,
        thumbnail_info: { mimetype: "image/jpeg", w: 1, h: 1, size: JPEG.length },
      },
    );
    const m = media(got);
    assert.equal(m["kind"], "image");
    assert.equal(m["type"], "image/png");
    assert.equal(m["size"], png.length);
    assert.equal(m["width"], 32);
    assert.equal(m["height"], 24);
    assert.equal(bodyOf(got), "look at this", "the caption is the body");
    const thumbnail = m["thumbnail"] as Record<string, unknown> | undefined;
    assert.ok(thumbnail, "the thumbnail came along");
    assert.equal(thumbnail["jpeg"], JPEG.toString("base64"));
  });

  it("a video, a voice note with duration and waveform, and a file arrive at WhatsApp", async function () {
    const video = randomBytes(3000);
    const v = media(
      await matrixSends(
        "m.video",
        video,
        "video/mp4",
        "clip.mp4",
        {},
        { duration: 4000, w: 4, h: 4 },
      ),
    );
    assert.equal(v["kind"], "video");
    assert.equal(v["duration"], 4);

    const voice = randomBytes(1500);
    const au = media(
      await matrixSends(
        "m.audio",
        voice,
        "audio/ogg",
        "Voice message.ogg",
        {
          "org.matrix.msc3245.voice": {},
          "org.matrix.msc1767.audio": { duration: 3000, waveform: WAVEFORM.map((x) => x * 10) },
        },
        { duration: 3000 },
      ),
    );
    assert.equal(au["kind"], "audio");
    assert.equal(au["voice"], true);
    assert.equal(au["duration"], 3);
    assert.ok(typeof au["waveform"] === "string", "the waveform came along");
    assert.equal(Buffer.from(au["waveform"], "base64").length, 64);

    const pdf = Buffer.concat([Buffer.from("%PDF-1.4\n"), randomBytes(2000)]);
    const f = media(await matrixSends("m.file", pdf, "application/pdf", "report.pdf"));
    assert.equal(f["kind"], "document");
    assert.equal(f["filename"], "report.pdf");
    assert.equal(f["type"], "application/pdf");
  });

  it("an image with caption and thumbnail, a video, a voice note and a document arrive on Matrix", async function () {
    const png = solidPng(8, 6, [220, 40, 40]);
    await e.from(a, {
      type: "media",
      kind: "image",
      data: png.toString("base64"),
      mime: "image/png",
      width: 8,
      height: 6,
      caption: "a red square",
      thumbnail: { data: JPEG.toString("base64"), width: 1, height: 1 },
    });
    const image = await e.ghostSays(portal, "A's image", (c) => c["msgtype"] === "m.image");
    const ic = image.getContent();
    assert.equal(ic["body"], "a red square", "the caption is the body");
    assert.equal(typeof ic["filename"], "string");
    assert.equal(ic["info"]?.mimetype, "image/png");
    assert.equal(ic["info"]?.size, png.length);
    assert.equal(ic["info"]?.w, 8);
    assert.equal(ic["info"]?.h, 6);
    assert.ok(ic["info"]?.thumbnail_url, "a thumbnail is shown");
    assert.deepEqual(await e.download(String(ic["url"])), png);
    assert.deepEqual(await e.download(String(ic["info"]?.thumbnail_url)), JPEG);

    const mp4 = randomBytes(2500);
    await e.from(a, {
      type: "media",
      kind: "video",
      data: mp4.toString("base64"),
      mime: "video/mp4",
      duration: 5,
      width: 4,
      height: 4,
    });
    const video = await e.ghostSays(portal, "A's video", (c) => c["msgtype"] === "m.video");
    assert.equal(video.getContent()["info"]?.duration, 5000);
    assert.deepEqual(await e.download(String(video.getContent()["url"])), mp4);

    const ogg = randomBytes(1200);
    await e.from(a, {
      type: "media",
      kind: "audio",
      data: ogg.toString("base64"),
      mime: "audio/ogg",
      duration: 3,
      voice: true,
      waveform: WAVEFORM,
    });
    const voice = await e.ghostSays(portal, "A's voice note", (c) => c["msgtype"] === "m.audio");
    const vc = voice.getContent() as Record<string, Record<string, unknown> | undefined>;
    assert.ok(vc["org.matrix.msc3245.voice"], "marked as a voice message");
    assert.equal(vc["info"]?.["duration"], 3000);
    const waveform = vc["org.matrix.msc1767.audio"]?.["waveform"] as number[] | undefined;
    assert.equal(waveform?.length, 64);
    assert.deepEqual(await e.download(String(vc["url"])), ogg);

    const doc = randomBytes(4000);
    await e.from(a, {
      type: "media",
      kind: "document",
      data: doc.toString("base64"),
      mime: "application/zip",
      filename: "photos.zip",
    });
    const file = await e.ghostSays(portal, "A's file", (c) => c["msgtype"] === "m.file");
    assert.equal(file.getContent()["body"], "photos.zip");
    assert.equal(file.getContent()["info"]?.mimetype, "application/zip");
    assert.equal(file.getContent()["info"]?.size, doc.length);
    assert.deepEqual(await e.download(String(file.getContent()["url"])), doc);
  });

  it("a 20 MB file goes each way intact", async function () {
    const big = randomBytes(20 * 1024 * 1024);
    const got = media(await matrixSends("m.file", big, "application/octet-stream", "big.bin"));
    assert.equal(got["size"], big.length);

    const back = randomBytes(20 * 1024 * 1024);
    await e.from(a, {
      type: "media",
      kind: "document",
      data: back.toString("base64"),
      mime: "application/octet-stream",
      filename: "back.bin",
    });
    const file = await e.ghostSays(portal, "A's 20 MB file", (c) => c["body"] === "back.bin");
    assert.equal(file.getContent()["info"]?.size, back.length);
    assert.ok((await e.download(String(file.getContent()["url"]))).equals(back));
  });

  it("a location goes each way", async function () {
    await e.send(portal, {
      msgtype: "m.location",
      body: "Alexanderplatz",
      geo_uri: "geo:52.5200066,13.404954;u=12",
    });
    const got = await e.received(a, "my location", (r) => element(r, "location") !== undefined);
    const loc = element(got, "location") ?? {};
    assert.equal(loc["lat"], 52.5200066);
    assert.equal(loc["lon"], 13.404954);

    await e.from(a, {
      type: "location",
      lat: 48.8583701,
      lon: 2.2944813,
      accuracy: 5,
      name: "Eiffel Tower",
      address: "Paris",
    });
    const event = await e.ghostSays(portal, "A's location", (c) => c["msgtype"] === "m.location");
    assert.match(String(event.getContent()["geo_uri"]), /^geo:48\.8583701,2\.2944813/);
    assert.match(String(event.getContent()["body"]), /Eiffel Tower, Paris/);
  });

  it("a contact card from WhatsApp shows its name and number", async function () {
    await e.from(a, {
      type: "contact",
      vcards: [
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Carol Example\r\nTEL;TYPE=CELL:+491705550123\r\nEND:VCARD\r\n",
      ],
    });
    const event = await e.ghostSays(portal, "the contact card", (c) =>
      String(c["body"]).includes("Carol Example"),
    );
    assert.match(String(event.getContent()["body"]), /\+491705550123|\+49 170 5550123/);
  });
});
