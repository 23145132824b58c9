import assert from "node:assert/strict";
import {
  checkEnvelopeBinding,
  decodeEnvelope,
  encodeEnvelope,
  randomRpad,
  type Envelope,
} from "../../../src/interop/codec/envelope.js";
import { parseEnvelopeXml } from "../../../src/interop/codec/envelope-parser.js";
import { SPEC } from "./fixtures.js";
import { assertCodecError } from "./helpers.js";

const HEAD = "<envelope xmlns='urn:interop:envelope:0'>";
const TAIL =
  "<id value='m1'/><time stamp='2025-03-01T12:00:00.000Z'/><to jid='491701234567@wa.example'/>" +
  "<from jid='alice=3amatrix.bridge.example@matrix.bridge.example'/></envelope>";
const withContent = (content: string): string => `${HEAD}<content>${content}</content>${TAIL}`;

describe("envelope (§12.2)", () => {
  it("decodes the spec's envelope and re-encodes it to the exact same text", () => {
    const env = decodeEnvelope(SPEC.envelope);
    assert.deepEqual(env.content, [{ kind: "body", text: "Hi! *Bold* and _italic_." }]);
    assert.equal(env.id, "c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11");
    assert.equal(env.time.toISOString(), "2025-03-01T12:00:00.000Z");
    assert.equal(env.to, "491701234567@wa.example");
    assert.equal(env.from, "alice=3amatrix.bridge.example@matrix.bridge.example");
    const text = encodeEnvelope(env, { rpad: "opInM70HsTcuPGNtM0xQPw" });
    assert.equal(
      text,
      "<envelope xmlns='urn:interop:envelope:0'><content><body xmlns='urn:interop:content:0'>Hi! *Bold* and _italic_.</body></content>" +
        "<rpad>opInM70HsTcuPGNtM0xQPw</rpad><id value='c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11'/>" +
        "<time stamp='2025-03-01T12:00:00.000Z'/><to jid='491701234567@wa.example'/>" +
        "<from jid='alice=3amatrix.bridge.example@matrix.bridge.example'/></envelope>",
    );
    assert.deepEqual(decodeEnvelope(Buffer.from(text, "utf8")), env);
  });

  it("pads with 0-200 base64-alphabet characters and escapes markup in text", () => {
    for (let i = 0; i < 20; i++) assert.match(randomRpad(), /^[A-Za-z0-9+/]{0,200}$/);
    const env: Envelope = {
      ...decodeEnvelope(SPEC.envelope),
      content: [{ kind: "body", text: "a < b && c > d ]]> '\"\r\n\t 👍" }],
    };
    const text = encodeEnvelope(env);
    assert.deepEqual(decodeEnvelope(text).content, env.content);
    assert.ok(!text.includes("\r"));
  });

  it("children may come in any order; unknown children and attributes are ignored", () => {
    const env = decodeEnvelope(
      `${HEAD}<from jid='alice=3amatrix.bridge.example@matrix.bridge.example' x='1'/><future/>` +
        `<to jid='491701234567@wa.example'/><time stamp='2025-03-01T12:00:00Z'/><id value='m1'/>` +
        `<content><x:y xmlns:x='urn:other'/></content></envelope>`,
    );
    assert.equal(env.id, "m1");
    assert.deepEqual(env.content, [
      { kind: "unknown", name: "y", ns: "urn:other", reason: "namespace" },
    ]);
  });

  it("a missing or repeated mandatory child makes the envelope invalid", () => {
    assertCodecError(
      () => decodeEnvelope(`${HEAD}<content/>${TAIL.replace("<id value='m1'/>", "")}`),
      {
        path: /envelope$/,
      },
    );
    assertCodecError(() => decodeEnvelope(`${HEAD}<content/><id value='m2'/>${TAIL}`), {
      path: /envelope\/id$/,
    });
    assertCodecError(() => decodeEnvelope(`${HEAD}<content/><content/>${TAIL}`));
    assertCodecError(() => decodeEnvelope(`${HEAD}<content/><rpad/><rpad/>${TAIL}`));
    assertCodecError(() =>
      decodeEnvelope(`<envelope xmlns='urn:interop:envelope:1'><content/>${TAIL}`),
    );
    assertCodecError(() =>
      decodeEnvelope(`${HEAD}<content/>${TAIL.replace("value='m1'", "value='m 1'")}`),
    );
  });

  it("binds from, to and id to the stanza", () => {
    const env = decodeEnvelope(SPEC.envelope);
    const expected = { from: env.from, to: env.to, originId: env.id };
    assert.doesNotThrow(() => checkEnvelopeBinding(env, expected));
    assertCodecError(
      () => checkEnvelopeBinding(env, { ...expected, to: "491705550000@wa.example" as never }),
      {
        path: /envelope\/to$/,
      },
    );
    assertCodecError(() => checkEnvelopeBinding(env, { ...expected, originId: "other" as never }));
    assertCodecError(() =>
      checkEnvelopeBinding(env, { ...expected, from: "491705550000@wa.example" as never }),
    );
  });

  it("refuses to encode an envelope above max-envelope-bytes", () => {
    const env: Envelope = {
      ...decodeEnvelope(SPEC.envelope),
      content: [{ kind: "body", text: "x".repeat(2000) }],
    };
    assertCodecError(() => encodeEnvelope(env, { maxEnvelopeBytes: 1024, rpad: false }));
  });

  describe("hostile input", () => {
    const hostile: [string, string, RegExp][] = [
      ["a DTD", `<!DOCTYPE envelope [<!ELEMENT envelope ANY>]>${withContent("")}`, /DTD/],
      [
        "an external entity",
        `<!DOCTYPE envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${withContent("<body xmlns='urn:interop:content:0'>&xxe;</body>")}`,
        /DTD/,
      ],
      [
        "billion laughs",
        `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>${withContent("<body xmlns='urn:interop:content:0'>&lol2;</body>")}`,
        /DTD/,
      ],
      [
        "an undeclared entity reference",
        withContent("<body xmlns='urn:interop:content:0'>&nbsp;</body>"),
        /entity reference &nbsp;/,
      ],
      [
        "a comment",
        withContent("<!-- hi --><body xmlns='urn:interop:content:0'>x</body>"),
        /comment/,
      ],
      ["a comment after the root", `${withContent("")}<!-- trailing -->`, /comment/],
      ["a processing instruction", withContent("<?php echo 1 ?>"), /processing instruction/],
      ["an XML declaration", `<?xml version='1.0'?>${withContent("")}`, /processing instruction/],
      ["a byte-order mark", `\uFEFF${withContent("")}`, /byte-order mark/],
      [
        "a bare ampersand",
        withContent("<body xmlns='urn:interop:content:0'>a & b</body>"),
        /'&' without a reference/,
      ],
      [
        "an invalid character reference",
        withContent("<body xmlns='urn:interop:content:0'>&#0;</body>"),
        /character reference/,
      ],
      [
        "a control character",
        withContent("<body xmlns='urn:interop:content:0'>\u0001</body>"),
        /character not allowed/,
      ],
      [
        "mismatched tags",
        withContent("<body xmlns='urn:interop:content:0'>x</bod>"),
        /does not close/,
      ],
      [
        "an undeclared prefix",
        withContent("<c:body xmlns='urn:interop:content:0'>x</c:body>"),
        /undeclared prefix/,
      ],
      [
        "a duplicate attribute",
        `${HEAD}<content/><id value='m1' value='m2'/>${TAIL.slice(TAIL.indexOf("<time"))}`,
        /duplicate attribute/,
      ],
      [
        "an unquoted attribute",
        withContent("<body xmlns=urn:interop:content:0>x</body>"),
        /unquoted/,
      ],
      ["two roots", `${withContent("")}<envelope/>`, /after the root/],
      ["truncated input", withContent("").slice(0, 60), /unclosed/],
    ];
    for (const [what, text, reason] of hostile) {
      it(`refuses ${what}`, () => {
        assertCodecError(() => decodeEnvelope(text), { condition: "bad-request", message: reason });
      });
    }

    it("refuses invalid UTF-8", () => {
      const bytes = Buffer.concat([
        Buffer.from(withContent("<body xmlns='urn:interop:content:0'>")),
        Buffer.from([0xc3, 0x28]),
      ]);
      assertCodecError(() => decodeEnvelope(bytes));
    });

    it("allows 16 levels of nesting and refuses 17", () => {
      const nest = (levels: number): string => "<a>".repeat(levels) + "</a>".repeat(levels);
      // envelope (1) > content (2) > x (3) > 13 more levels = 16
      const ok = withContent(`<x xmlns='urn:other'>${nest(13)}</x>`);
      assert.equal(decodeEnvelope(ok).content[0]?.kind, "unknown");
      assertCodecError(() => decodeEnvelope(withContent(`<x xmlns='urn:other'>${nest(14)}</x>`)), {
        message: /more than 16 levels/,
      });
    });

    it("allows 1000 elements and refuses 1001", () => {
      // The skeleton has 6 elements: envelope, content, id, time, to, from.
      const fill = (n: number): string => "<r xmlns='urn:other'/>".repeat(n);
      assert.equal(decodeEnvelope(withContent(fill(994))).content.length, 994);
      assertCodecError(() => decodeEnvelope(withContent(fill(995))), {
        message: /more than 1000 elements/,
      });
    });

    it("refuses an envelope larger than max-envelope-bytes before parsing it", () => {
      const text = withContent(`<body xmlns='urn:interop:content:0'>${"é".repeat(200)}</body>`);
      const size = Buffer.byteLength(text);
      assert.equal(decodeEnvelope(text, { maxEnvelopeBytes: size }).content.length, 1);
      assertCodecError(() => decodeEnvelope(text, { maxEnvelopeBytes: size - 1 }), {
        message: /exceed/,
      });
      assertCodecError(() => decodeEnvelope(withContent(" ".repeat(32768))));
    });

    it("reads character references, CDATA and the predefined entities", () => {
      const env = decodeEnvelope(
        withContent(
          "<body xmlns='urn:interop:content:0'>&lt;&amp;&gt;&quot;&apos;&#13;&#x1F44D;<![CDATA[<b>]]></body>",
        ),
      );
      assert.deepEqual(env.content, [{ kind: "body", text: "<&>\"'\r👍<b>" }]);
    });
  });

  it("the parser resolves prefixed namespaces and drops namespaced attributes", () => {
    const root = parseEnvelopeXml("<e:envelope xmlns:e='urn:interop:envelope:0' e:x='1' y='2'/>", {
      maxBytes: 1000,
    });
    assert.equal(root.name, "envelope");
    assert.equal(root.ns, "urn:interop:envelope:0");
    assert.deepEqual([...root.attrs], [["y", "2"]]);
  });
});
