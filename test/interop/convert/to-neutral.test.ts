import assert from "node:assert/strict";
import type { ContentElement } from "../../../src/interop/codec/content.js";
import type { InboundMedia } from "../../../src/interop/convert/media.js";
import { toNeutral } from "../../../src/interop/convert/to-neutral.js";
import type { BareJid, MessageId } from "../../../src/util/ids.js";
import { B64_32, GK, JPEG, NS, inbound, inboundContext, onlyMessage } from "./helpers.js";

const body = (text: string): string => `<body xmlns='${NS}'>${text}</body>`;
const image = (extra = "", attrs = "width='1280' height='960'"): string =>
  `<media xmlns='${NS}' kind='image' ${attrs} url='https://wa.example/media/b/5e0c' ` +
  `type='image/jpeg' size='183211' sha256='${B64_32}' enc-sha256='${B64_32}' key='${B64_32}'>${extra}</media>`;
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");

describe("interop content -> neutral events (§13)", () => {
  it("turns a body into a text message whose spans style the body as sent", () => {
    const out = toNeutral(inbound(body("Hi! *Bold* and _italic_.")), inboundContext());
    const msg = onlyMessage(out.events);
    assert.equal(msg.from, GK);
    assert.equal(msg.id, "m1");
    assert.equal(msg.order, 42);
    assert.deepEqual(msg.sentAt, new Date("2025-03-01T12:00:00.000Z"));
    assert.deepEqual(msg.content, {
      type: "text",
      text: {
        text: "Hi! *Bold* and _italic_.",
        spans: [
          { start: 4, end: 10, style: "bold", markers: { open: 1, close: 1 } },
          { start: 15, end: 23, style: "italic", markers: { open: 1, close: 1 } },
        ],
      },
    });
  });

  it("gives the marker-free reading when asked to strip markers", () => {
    const out = toNeutral(inbound(body("*Bold*")), { ...inboundContext(), markers: "strip" });
    const content = onlyMessage(out.events).content;
    assert.deepEqual(content, {
      type: "text",
      text: { text: "Bold", spans: [{ start: 0, end: 4, style: "bold" }] },
    });
  });

  it("turns media with a body into media with a caption, and describes it for download", () => {
    const opened: InboundMedia[] = [];
    const thumb = `<thumbnail width='64' height='48'>${b64(JPEG)}</thumbnail>`;
    const out = toNeutral(inbound(image(thumb), body("look *here*")), inboundContext(opened));
    const msg = onlyMessage(out.events);
    assert.equal(msg.content.type, "media");
    if (msg.content.type !== "media") return;
    const { media, caption } = msg.content;
    assert.equal(media.kind, "image");
    assert.equal(media.mimeType, "image/jpeg");
    assert.equal(media.size, 183211);
    assert.equal(media.width, 1280);
    assert.equal(media.height, 960);
    assert.deepEqual(media.thumbnail, {
      data: JPEG,
      width: 64,
      height: 48,
      mimeType: "image/jpeg",
    });
    assert.equal(caption?.text, "look *here*");
    assert.equal(opened.length, 1);
    assert.equal(out.media, opened[0]);
    assert.equal(out.media?.url, "https://wa.example/media/b/5e0c");
    assert.deepEqual(out.media?.mediaKey, new Uint8Array(32).fill(7));
    assert.deepEqual(out.media?.encSha256, new Uint8Array(32).fill(7));
  });

  it("keeps a thumbnail only if it is a JPEG with known dimensions", () => {
    const thumbOf = (extra: string) => {
      const out = toNeutral(inbound(image(extra)), inboundContext());
      const c = onlyMessage(out.events).content;
      return c.type === "media" ? c.media.thumbnail : "not media";
    };
    const measured = thumbOf(`<thumbnail>${b64(JPEG)}</thumbnail>`);
    assert.deepEqual(measured, { data: JPEG, width: 64, height: 48, mimeType: "image/jpeg" });
    const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.equal(thumbOf(`<thumbnail width='8' height='8'>${b64(png)}</thumbnail>`), undefined);
    const noFrame = Uint8Array.from([0xff, 0xd8, 0xff, 0xd9, 0, 0, 0, 0, 0, 0]);
    assert.equal(thumbOf(`<thumbnail>${b64(noFrame)}</thumbnail>`), undefined);
  });

  it("sanitises a document's file name and distrusts its MIME claim's syntax", () => {
    const doc =
      `<media xmlns='${NS}' kind='document' url='https://wa.example/media/b/7d1c' ` +
      `type='text/html&lt;script&gt;' size='1000' sha256='${B64_32}' enc-sha256='${B64_32}' ` +
      `key='${B64_32}'><filename>../../etc/pass\u202ewd.txt</filename></media>`;
    const out = toNeutral(inbound(doc), inboundContext());
    const c = onlyMessage(out.events).content;
    assert.equal(c.type === "media" && c.media.fileName, "passwd.txt");
    assert.equal(c.type === "media" && c.media.mimeType, "application/octet-stream");
  });

  it("carries a voice message's flag, duration and 64-value waveform", () => {
    const wave = Uint8Array.from({ length: 64 }, (_, i) => i);
    const voice =
      `<media xmlns='${NS}' kind='audio' voice='true' duration='7' url='https://wa.example/m/v' ` +
      `type='audio/ogg; codecs=opus' size='11843' sha256='${B64_32}' enc-sha256='${B64_32}' ` +
      `key='${B64_32}'><waveform>${b64(wave)}</waveform></media>`;
    const c = onlyMessage(toNeutral(inbound(voice), inboundContext()).events).content;
    assert.equal(c.type, "media");
    if (c.type !== "media") return;
    assert.equal(c.media.voice, true);
    assert.equal(c.media.durationSeconds, 7);
    assert.equal(c.media.mimeType, "audio/ogg; codecs=opus");
    assert.deepEqual(c.media.waveform, [...wave]);
  });

  it("attaches a reply reference with its quote to the message", () => {
    const reply = `<reply xmlns='${NS}' id='3EB0A91C52' author='${GK}'><quote>Are you coming?</quote></reply>`;
    const msg = onlyMessage(toNeutral(inbound(reply, body("Yes!")), inboundContext()).events);
    assert.deepEqual(msg.replyTo, { author: GK, id: "3EB0A91C52", quote: "Are you coming?" });
    assert.equal(msg.content.type === "text" && msg.content.text.text, "Yes!");
  });

  it("reports a complete reaction set, duplicates once, and an empty set as removal", () => {
    const target = `id='3EB0A91C52' author='491709999999@wa.example'`;
    const set = `<reactions xmlns='${NS}' ${target}><reaction>👍</reaction><reaction>❤️</reaction><reaction>👍</reaction></reactions>`;
    assert.deepEqual(toNeutral(inbound(set), inboundContext()).events, [
      {
        kind: "reactions",
        from: GK,
        target: { author: "491709999999@wa.example", id: "3EB0A91C52" },
        emojis: ["👍", "❤️"],
      },
    ]);
    const cleared = toNeutral(inbound(`<reactions xmlns='${NS}' ${target}/>`), inboundContext());
    assert.deepEqual(cleared.events[0]?.kind === "reactions" && cleared.events[0].emojis, []);
  });

  it("turns replace + body into an edit of the sender's own original message", () => {
    const out = toNeutral(inbound(`<replace xmlns='${NS}' id='orig-1'/>`, body("fixed *now*")), {
      ...inboundContext(),
      order: 7,
    });
    assert.equal(out.events.length, 1);
    const edit = out.events[0];
    assert.equal(edit?.kind, "edit");
    if (edit?.kind !== "edit") return;
    assert.deepEqual(edit.target, { author: GK, id: "orig-1" });
    assert.equal(edit.order, 7);
    assert.equal(edit.content.type === "text" && edit.content.text.text, "fixed *now*");
  });

  it("ignores an edit that carries no body", () => {
    const out = toNeutral(inbound(`<replace xmlns='${NS}' id='orig-1'/>`), inboundContext());
    assert.deepEqual(out.events, []);
  });

  it("reports a retraction, naming the original author an admin's retraction gives", () => {
    const own = toNeutral(inbound(`<retract xmlns='${NS}' id='orig-1'/>`), inboundContext());
    assert.deepEqual(own.events, [
      { kind: "retract", from: GK, target: { author: GK, id: "orig-1" } },
    ]);
    const other = "491705550123@wa.example";
    const admin = toNeutral(
      inbound(`<retract xmlns='${NS}' id='orig-2' author='${other}'/>`),
      inboundContext(),
    );
    assert.deepEqual(admin.events[0]?.kind === "retract" && admin.events[0].target, {
      author: other,
      id: "orig-2",
    });
  });

  it("converts location, contact cards and call notices", () => {
    const loc = `<location xmlns='${NS}' lat='52.5200066' lon='13.4049540' accuracy='12'><name>Alexanderplatz</name><address>10178 Berlin</address></location>`;
    assert.deepEqual(onlyMessage(toNeutral(inbound(loc), inboundContext()).events).content, {
      type: "location",
      lat: 52.5200066,
      lon: 13.404954,
      accuracy: 12,
      name: "Alexanderplatz",
      address: "10178 Berlin",
    });
    const card = "BEGIN:VCARD&#13;\nVERSION:3.0&#13;\nFN:Carol&#13;\nEND:VCARD&#13;\n";
    const contact = `<contact xmlns='${NS}'><vcard>${card}</vcard></contact>`;
    assert.deepEqual(onlyMessage(toNeutral(inbound(contact), inboundContext()).events).content, {
      type: "contacts",
      vcards: ["BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Carol\r\nEND:VCARD\r\n"],
    });
    const call = `<call xmlns='${NS}' call-id='c1' media='video' outcome='ended' duration='65'/>`;
    assert.deepEqual(onlyMessage(toNeutral(inbound(call), inboundContext()).events).content, {
      type: "call",
      media: "video",
      outcome: "ended",
      durationSeconds: 65,
    });
  });

  it("shows a disappearing-messages setting as the notice §13.10 requires", () => {
    const notice = (timer: number, label?: string) => {
      const ctx = { ...inboundContext(), ...(label === undefined ? {} : { senderLabel: label }) };
      const msg = onlyMessage(
        toNeutral(inbound(`<disappearing xmlns='${NS}' timer='${timer}'/>`), ctx).events,
      );
      assert.equal(msg.content.type === "text" && msg.content.notice, true);
      return msg.content.type === "text" ? msg.content.text.text : "";
    };
    assert.equal(
      notice(604800),
      "+491701234567 set disappearing messages to 7 days; this app does not support disappearing messages",
    );
    assert.match(notice(86400, "+49 170 1234567"), /^\+49 170 1234567 set .* to 24 hours;/);
    assert.match(notice(7776000), /to 90 days;/);
    assert.equal(notice(0), "+491701234567 turned off disappearing messages");
  });

  it("gives a notice next to a message that also carries a disappearing setting", () => {
    const out = toNeutral(
      inbound(`<disappearing xmlns='${NS}' timer='86400'/>`, body("hi")),
      inboundContext(),
    );
    assert.deepEqual(
      out.events.map((e) => (e.kind === "message" ? [e.id, e.content.type] : e.kind)),
      [
        ["m1#disappearing", "text"],
        ["m1", "text"],
      ],
    );
  });

  it("returns the nick apart from the message and never inside it", () => {
    const out = toNeutral(
      inbound(`<nick xmlns='${NS}'>Mallory the Bank</nick>`, body("hello")),
      inboundContext(),
    );
    assert.equal(out.nick, "Mallory the Bank");
    const msg = onlyMessage(out.events);
    assert.equal(msg.content.type === "text" && msg.content.text.text, "hello");
    assert.equal(JSON.stringify(msg).includes("Mallory"), false);
    const alone = toNeutral(inbound(`<nick xmlns='${NS}'>Alice</nick>`), inboundContext());
    assert.deepEqual(alone.events, []);
    assert.equal(alone.nick, "Alice");
  });

  it("shows the fallback text when no element is understood, else a placeholder", () => {
    const sticker = `<sticker xmlns='${NS}' id='s1'/>`;
    const withFallback = toNeutral(
      inbound(sticker, `<fallback xmlns='${NS}'>Sent a sticker</fallback>`),
      inboundContext(),
    );
    assert.deepEqual(onlyMessage(withFallback.events).content, {
      type: "unsupported",
      fallback: "Sent a sticker",
    });
    assert.deepEqual(onlyMessage(toNeutral(inbound(sticker), inboundContext()).events).content, {
      type: "unsupported",
    });
    assert.deepEqual(onlyMessage(toNeutral(inbound(), inboundContext()).events).content, {
      type: "unsupported",
    });
  });

  it("treats an element with an unknown value or a missing required attribute as unknown", () => {
    const sticker = `<media xmlns='${NS}' kind='sticker' url='https://wa.example/m' type='image/webp' size='1' sha256='${B64_32}' enc-sha256='${B64_32}' key='${B64_32}'/>`;
    const noWidth = image("", "height='960'");
    for (const el of [sticker, noWidth]) {
      const out = toNeutral(
        inbound(el, `<fallback xmlns='${NS}'>A sticker</fallback>`),
        inboundContext(),
      );
      assert.deepEqual(onlyMessage(out.events).content, {
        type: "unsupported",
        fallback: "A sticker",
      });
      assert.equal(out.media, undefined);
    }
  });

  it("prefers an understood body over the fallback and lists what it did not show", () => {
    const out = toNeutral(
      inbound(body("text"), `<poll xmlns='${NS}'/>`, `<fallback xmlns='${NS}'>A poll</fallback>`),
      inboundContext(),
    );
    assert.equal(onlyMessage(out.events).content.type, "text");
    assert.deepEqual(out.ignored, ["unknown:poll", "fallback"]);
  });

  it("keeps the reply reference of a message whose content is not understood", () => {
    const reply = `<reply xmlns='${NS}' id='r1' author='${GK}'/>`;
    const msg = onlyMessage(
      toNeutral(inbound(reply, `<poll xmlns='${NS}'/>`), inboundContext()).events,
    );
    assert.deepEqual(msg.content, { type: "unsupported" });
    assert.deepEqual(msg.replyTo, { author: GK, id: "r1" });
  });

  it("shows a message with an expire marker normally and a lone sender key not at all", () => {
    const expiring = toNeutral(
      inbound(`<expire xmlns='${NS}' timer='604800'/>`, body("x")),
      inboundContext(),
    );
    assert.equal(onlyMessage(expiring.events).content.type, "text");
    assert.deepEqual(expiring.ignored, []);
    const keyOnly = toNeutral(
      inbound(`<sender-key xmlns='${NS}' group='k3x9q2@g.wa.example'>AAEC</sender-key>`),
      inboundContext(),
    );
    assert.deepEqual(keyOnly.events, []);
  });

  it("never throws on any mix of content elements", () => {
    const ref = { id: "r1" as MessageId, author: GK as BareJid };
    const pool: ContentElement[] = [
      { kind: "body", text: "*x* ```\n> _" },
      { kind: "reply", ...ref, quote: undefined },
      { kind: "reactions", ...ref, reactions: [] },
      { kind: "replace", id: ref.id },
      { kind: "retract", id: ref.id, author: undefined },
      {
        kind: "location",
        lat: 0,
        lon: 0,
        accuracy: undefined,
        name: undefined,
        address: undefined,
      },
      { kind: "contact", vcards: [""] },
      { kind: "disappearing", timer: 86400 },
      { kind: "expire", timer: 86400 },
      { kind: "nick", nick: "" },
      {
        kind: "call",
        callId: "c",
        media: "audio",
        outcome: "missed",
        duration: undefined,
        initiator: undefined,
      },
      { kind: "fallback", text: "" },
      { kind: "unknown", name: "x", ns: undefined, reason: "namespace" },
    ];
    let seed = 3;
    for (let round = 0; round < 500; round++) {
      const content: ContentElement[] = [];
      for (let i = 0; i < round % 6; i++) {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        content.push(pool[seed % pool.length] as ContentElement);
      }
      const out = toNeutral(
        { from: GK, id: "m9" as MessageId, time: new Date(0), content },
        inboundContext(),
      );
      assert.ok(Array.isArray(out.events));
    }
  });
});
