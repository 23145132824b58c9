import assert from "node:assert/strict";
import type { NeutralText, TextSpan } from "../../../src/core/network.js";
import { htmlToNeutral, neutralToHtml, neutralToPlain } from "../../../src/matrix/convert/html.js";
import { matrixEventToNeutral } from "../../../src/matrix/convert/to-neutral.js";
import { prng as rng } from "../../helpers/prng.js";

const PIECES = [
  "<b>", "</b>", "<i>", "</em>", "<strong>", "<del>", "</s>", "<code>", "</code>", "<pre>", "</pre>",
  "<blockquote>", "</blockquote>", "<a href=\"https://x.example/a?b=1&amp;c\">", "<a href='javascript:x'>",
  "<a href=\"https://matrix.to/#/@u:x\">", "</a>", "<br>", "<br/>", "<p>", "</p>", "<ul>", "<ol>", "<li>",
  "</li>", "<h2>", "</h2>", "<mx-reply>", "</mx-reply>", "<script>", "</script>", "<style>", "<img src=x>",
  "<iframe>", "</iframe>", "<!--", "-->", "<![CDATA[", "]]>", "&amp;", "&lt;", "&#x1F600;", "&#0;", "&bogus;",
  "&", "<", ">", "\"", "'", " ", "  ", "\n", "\t", "text", "é", "😀", "\u0000", "\u202e", "<div", "=", "/>",
]; // prettier-ignore

function randomHtml(next: () => number): string {
  let s = "";
  const n = Math.floor(next() * 40);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(next() * PIECES.length)] ?? "";
  return s;
}

function assertWellFormed(t: NeutralText): void {
  assert.equal(typeof t.text, "string");
  for (const s of t.spans) {
    assert.ok(Number.isInteger(s.start) && Number.isInteger(s.end), JSON.stringify(s));
    assert.ok(0 <= s.start && s.start < s.end && s.end <= t.text.length, JSON.stringify({ t, s }));
  }
}

describe("matrix/convert fuzz", () => {
  it("random HTML-ish strings never throw and give spans inside the text", () => {
    const next = rng(20260101);
    for (let i = 0; i < 3000; i++) {
      const html = randomHtml(next);
      let parsed: NeutralText;
      try {
        parsed = htmlToNeutral(html);
        assertWellFormed(parsed);
        const rendered = neutralToHtml(parsed);
        assert.doesNotMatch(rendered, /<(script|style|iframe|img|mx-reply)|javascript:/i);
        assertWellFormed(htmlToNeutral(rendered));
        neutralToPlain(parsed);
      } catch (err) {
        assert.fail(`input ${JSON.stringify(html)}: ${String(err)}`);
      }
    }
  });

  it("rendering random spans reads back to the same text", () => {
    const next = rng(7);
    // Links are left out: a link whose label is not its URL reads back as "label (url)" by design.
    const styles: TextSpan["style"][] = ["bold", "italic", "strikethrough", "monospace"];
    for (let i = 0; i < 1000; i++) {
      const text = Array.from(
        { length: 1 + Math.floor(next() * 20) },
        () => "ab <&é"[Math.floor(next() * 6)],
      ).join("");
      const spans: TextSpan[] = Array.from({ length: Math.floor(next() * 5) }, () => {
        const start = Math.floor(next() * text.length);
        const end = start + 1 + Math.floor(next() * (text.length - start));
        const style = styles[Math.floor(next() * styles.length)] ?? "bold";
        return style === "link"
          ? { start, end, style, url: "https://x.example/" }
          : { start, end, style };
      });
      const back = htmlToNeutral(neutralToHtml({ text, spans }));
      assert.equal(back.text, text.trim(), JSON.stringify({ text, spans }));
    }
  });

  it("random event contents never throw", () => {
    const next = rng(99);
    const values: unknown[] = [
      null, undefined, 0, -1, 1e308, NaN, "", "x", "geo:1,2", "mxc://a/b", "$e", [], [1, "a"], {}, true,
      { event_id: "$x" }, { "m.in_reply_to": { event_id: "$y" } }, { rel_type: "m.replace", event_id: "$z" },
    ]; // prettier-ignore
    const keys = [
      "msgtype", "body", "format", "formatted_body", "url", "file", "info", "filename", "geo_uri",
      "m.relates_to", "m.new_content", "org.matrix.msc1767.audio", "org.matrix.msc3245.voice", "redacts",
    ]; // prettier-ignore
    const msgtypes = [
      "m.text",
      "m.notice",
      "m.emote",
      "m.image",
      "m.video",
      "m.audio",
      "m.file",
      "m.location",
    ];
    const types = ["m.room.message", "m.sticker", "m.reaction", "m.room.redaction"];
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
    for (let i = 0; i < 3000; i++) {
      const content: Record<string, unknown> = { msgtype: pick(msgtypes) };
      for (let k = 0; k < 6; k++)
        content[pick(keys)] = next() < 0.3 ? randomHtml(next) : pick(values);
      const result = matrixEventToNeutral(
        { type: pick(types), content, redacts: pick(values) },
        async () => {
          throw new Error("not fetched in this test");
        },
      );
      assert.ok(["message", "edit", "reaction", "redaction", "unsupported"].includes(result.kind));
    }
  });
});
