import assert from "node:assert/strict";
import type { NeutralText, TextSpan } from "../../../src/core/network.js";
import { parseStyling, renderStyling, sortSpans } from "../../../src/interop/convert/styling.js";

type Style = TextSpan["style"];

/** The styled substrings of a parse, as `style:text` (markers included), in span order. */
function styled(body: string): string[] {
  const { text, spans } = parseStyling(body).withMarkers;
  return spans.map((s) => `${s.style}:${text.slice(s.start, s.end)}`);
}

function plain(body: string): NeutralText {
  return parseStyling(body).withoutMarkers;
}

const span = (start: number, end: number, style: Style, url?: string): TextSpan =>
  url === undefined ? { start, end, style } : { start, end, style, url };

describe("message styling (§13.1, XEP-0393)", () => {
  describe("parsing spans", () => {
    it("styles each directive pair and keeps the body verbatim with spans over the markers", () => {
      const parsed = parseStyling("Hi! *Bold* and _italic_, ~gone~ `code`.");
      assert.equal(parsed.withMarkers.text, "Hi! *Bold* and _italic_, ~gone~ `code`.");
      assert.deepEqual(styled("Hi! *Bold* and _italic_, ~gone~ `code`."), [
        "bold:*Bold*",
        "italic:_italic_",
        "strikethrough:~gone~",
        "monospace:`code`",
      ]);
    });

    it("drops the markers and remaps the spans in the marker-free reading", () => {
      assert.deepEqual(plain("Hi! *Bold* and _italic_."), {
        text: "Hi! Bold and italic.",
        spans: [span(4, 8, "bold"), span(13, 19, "italic")],
      });
    });

    it("styles the XEP's positive examples exactly as the XEP shows", () => {
      assert.deepEqual(styled("*strong*"), ["bold:*strong*"]);
      assert.deepEqual(styled("plain *strong* plain"), ["bold:*strong*"]);
      assert.deepEqual(styled("*strong* plain *strong*"), ["bold:*strong*", "bold:*strong*"]);
      assert.deepEqual(styled("*strong*plain*"), ["bold:*strong*"]);
      assert.deepEqual(styled("* plain *strong*"), ["bold:*strong*"]);
      assert.deepEqual(styled("Everyone ~dis~likes cake."), ["strikethrough:~dis~"]);
    });

    it("leaves unmatched, whitespace-bound and empty directives as plain text", () => {
      for (const body of ["not strong*", "*not strong", "*not *strong", "**", "****", "* a *"]) {
        assert.deepEqual(styled(body), [], body);
        assert.equal(plain(body).text, body, body);
      }
    });

    it("does not open a span in the middle of a word", () => {
      assert.deepEqual(styled("snake_case_name and 2*3*4"), []);
      assert.deepEqual(styled("a*b* c"), []);
    });

    it("never lets a span cross a line", () => {
      assert.deepEqual(styled("*not \n strong*"), []);
      assert.deepEqual(styled("*one*\n*two*"), ["bold:*one*", "bold:*two*"]);
    });

    it("nests different styles and lets an opening follow another opening", () => {
      assert.deepEqual(styled("*_both_*"), ["bold:*_both_*", "italic:_both_"]);
      assert.deepEqual(styled("_emphasized *strong* inside_"), [
        "italic:_emphasized *strong* inside_",
        "bold:*strong*",
      ]);
      assert.deepEqual(plain("*`mono and bold`*"), {
        text: "mono and bold",
        spans: [span(0, 13, "bold"), span(0, 13, "monospace")],
      });
    });

    it("matches lazily: the first valid closing directive ends the span", () => {
      assert.deepEqual(styled("*a* b*"), ["bold:*a*"]);
      assert.deepEqual(styled("*a *b* c*"), ["bold:*a *b*"]);
    });

    it("styles nothing inside monospace", () => {
      assert.deepEqual(styled("This is `*monospace*`"), ["monospace:`*monospace*`"]);
      assert.deepEqual(plain("`*a*`"), { text: "*a*", spans: [span(0, 3, "monospace")] });
    });
  });

  describe("parsing blocks", () => {
    it("reads a fenced block verbatim, markers inside included", () => {
      const body = "```\ncode *not bold*\n```\nafter *bold*";
      assert.deepEqual(styled(body), ["code-block:```\ncode *not bold*\n```", "bold:*bold*"]);
      assert.deepEqual(plain(body), {
        text: "code *not bold*\nafter bold",
        spans: [span(0, 15, "code-block"), span(22, 26, "bold")],
      });
    });

    it("ends an unclosed fence at the end of its parent block", () => {
      const body = "> ```\n> (println)\n\nplain *x*";
      assert.deepEqual(styled(body), [
        "quote:> ```\n> (println)",
        "code-block:```\n> (println)",
        "bold:*x*",
      ]);
      assert.equal(plain(body).text, "(println)\n\nplain x");
    });

    it("reads `> ` lines as quotes, nested quotes and styling inside them", () => {
      const body = "> quoted *b*\n> > nested\nplain";
      assert.deepEqual(styled(body), [
        "quote:> quoted *b*\n> > nested",
        "bold:*b*",
        "quote:> nested",
      ]);
      assert.deepEqual(plain(body), {
        text: "quoted b\nnested\nplain",
        spans: [span(0, 15, "quote"), span(7, 8, "bold"), span(9, 15, "quote")],
      });
    });

    it("does not read `>` without a space as a quote (§13.1 names `> `)", () => {
      assert.deepEqual(styled(">not a quote\n>> neither"), []);
    });

    it("handles CRLF line ends", () => {
      assert.deepEqual(plain("```\r\nx\r\n```\r\n*y*"), {
        text: "x\r\ny",
        spans: [span(0, 1, "code-block"), span(3, 4, "bold")],
      });
    });
  });

  describe("rendering", () => {
    it("writes each style with its directive", () => {
      const text = "bold italic strike mono";
      const out = renderStyling({
        text,
        spans: [
          span(0, 4, "bold"),
          span(5, 11, "italic"),
          span(12, 18, "strikethrough"),
          span(19, 23, "monospace"),
        ],
      });
      assert.equal(out, "*bold* _italic_ ~strike~ `mono`");
    });

    it("writes quotes as `> ` lines and code blocks between fences", () => {
      const text = "intro\nquoted\n\nlines\ncode *x*\nafter";
      const out = renderStyling({
        text,
        spans: [span(6, 19, "quote"), span(20, 28, "code-block")],
      });
      assert.equal(out, "intro\n> quoted\n> \n> lines\n```\ncode *x*\n```\nafter");
    });

    it("puts a block that starts or ends mid-line on lines of its own", () => {
      const out = renderStyling({ text: "see:code here", spans: [span(4, 8, "code-block")] });
      assert.equal(out, "see:\n```\ncode\n```\n here");
    });

    it("writes links as label (url), or the URL alone when the label is the URL", () => {
      const text = "see the docs or https://x.example";
      const out = renderStyling({
        text,
        spans: [
          span(8, 12, "link", "https://docs.example/a"),
          span(16, 33, "link", "https://x.example"),
        ],
      });
      assert.equal(out, "see the docs (https://docs.example/a) or https://x.example");
    });

    it("moves markers inside surrounding whitespace and cuts spans at line ends", () => {
      const out = renderStyling({ text: "a  bold \nline b", spans: [span(1, 14, "bold")] });
      assert.equal(out, "a  *bold* \n*line* b");
    });

    it("leaves unexpressible spans unstyled instead of sending stray markers", () => {
      const cases: [NeutralText, string][] = [
        [{ text: "unbelievable", spans: [span(2, 6, "bold")] }, "unbelievable"],
        [{ text: "a*b c", spans: [span(0, 3, "bold")] }, "a*b c"],
        [{ text: "a b c", spans: [span(0, 3, "bold"), span(2, 5, "italic")] }, "*a b* c"],
        [{ text: "x y", spans: [span(0, 3, "monospace"), span(0, 1, "bold")] }, "`x y`"],
        [{ text: "a b", spans: [span(0, 1, "bold"), span(1, 3, "italic")] }, "*a* _b_"],
      ];
      for (const [input, expected] of cases) assert.equal(renderStyling(input), expected);
    });

    it("merges touching spans of one style so that they parse back", () => {
      const out = renderStyling({ text: "ab cd", spans: [span(0, 2, "bold"), span(2, 5, "bold")] });
      assert.equal(out, "*ab cd*");
    });

    it("sends directive characters the user typed as they are (XEP-0393 has no escapes)", () => {
      assert.equal(renderStyling({ text: "2*3 is *six*", spans: [] }), "2*3 is *six*");
    });

    it("ignores spans outside the text or with broken offsets", () => {
      const out = renderStyling({
        text: "abc",
        spans: [
          span(-1, 2, "bold"),
          span(1, 9, "italic"),
          span(2, 1, "bold"),
          span(0.5, 2, "bold"),
        ],
      });
      assert.equal(out, "abc");
    });
  });

  describe("round trips", () => {
    const representable: NeutralText[] = [
      { text: "plain", spans: [] },
      { text: "bold and italic", spans: [span(0, 4, "bold"), span(9, 15, "italic")] },
      { text: "both", spans: [span(0, 4, "bold"), span(0, 4, "italic")] },
      { text: "x mono y", spans: [span(2, 6, "monospace"), span(0, 8, "strikethrough")] },
      { text: "quoted\nplain", spans: [span(0, 6, "quote")] },
      { text: "a\n\nb", spans: [span(0, 4, "quote"), span(3, 4, "bold")] },
      { text: "outer\ninner", spans: [span(0, 11, "quote"), span(6, 11, "quote")] },
      { text: "intro\nline1\nline2\nafter", spans: [span(6, 17, "code-block")] },
      { text: "a\nb", spans: [span(0, 3, "code-block"), span(0, 3, "quote")] },
    ];

    it("parses a rendered text back to the same styling, markers removed", () => {
      for (const input of representable) {
        const back = parseStyling(renderStyling(input)).withoutMarkers;
        assert.deepEqual(back, { text: input.text, spans: sortSpans(input.spans) });
      }
    });

    it("renders a parsed body's marker-free reading back to the same body", () => {
      const bodies = [
        "Hi! *Bold* and _italic_.",
        "*_both_* and ~strike~ `mono`",
        "> quoted *b*\n> > nested\nplain",
        "```\ncode *x*\n```\nafter",
        "> a\n> \n> b",
      ];
      for (const body of bodies) assert.equal(renderStyling(plain(body)), body);
    });
  });

  describe("hostile input", () => {
    const ALPHABET = [
      "*",
      "_",
      "~",
      "`",
      "```",
      "> ",
      ">",
      "\n",
      "\r\n",
      " ",
      "a",
      "é",
      "👍",
      "\u00a0",
    ];

    function randomText(seed: number, length: number): string {
      let x = seed;
      let out = "";
      for (let i = 0; i < length; i++) {
        x = (x * 1103515245 + 12345) % 2147483648;
        out += ALPHABET[x % ALPHABET.length];
      }
      return out;
    }

    it("never throws and keeps every span inside its text", () => {
      for (let seed = 1; seed <= 400; seed++) {
        const body = randomText(seed, 1 + (seed % 80));
        const parsed = parseStyling(body);
        for (const t of [parsed.withMarkers, parsed.withoutMarkers]) {
          for (const s of t.spans)
            assert.ok(s.start >= 0 && s.start < s.end && s.end <= t.text.length);
        }
        assert.equal(parsed.withMarkers.text, body);
        const spans = parsed.withMarkers.spans.map((s, i) => ({ ...s, end: s.end + (i % 3) - 1 }));
        assert.equal(typeof renderStyling({ text: body, spans }), "string");
      }
    });

    it("parses a maximum-size body of directives and deep quotes without blowing up", () => {
      const bodies = [
        "*a ".repeat(5400),
        "> ".repeat(8000),
        `${"> ".repeat(4000)}x`,
        "`".repeat(16000),
        "```\n".repeat(4000),
      ];
      for (const body of bodies) {
        const parsed = parseStyling(body);
        assert.equal(parsed.withMarkers.text, body);
        renderStyling(parsed.withoutMarkers);
      }
    });
  });
});
