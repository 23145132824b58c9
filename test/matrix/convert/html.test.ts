import assert from "node:assert/strict";
import type { NeutralText } from "../../../src/core/network.js";
import { htmlToNeutral, neutralToHtml, neutralToPlain } from "../../../src/matrix/convert/html.js";

const n = (text: string, spans: NeutralText["spans"] = []): NeutralText => ({ text, spans });

describe("matrix/convert html", () => {
  describe("HTML -> neutral -> HTML round trips", () => {
    const canonical: Record<string, string> = {
      bold: "a <strong>bold</strong> word",
      italic: "an <em>italic</em> word",
      strikethrough: "a <del>struck</del> word",
      monospace: "run <code>npm test</code> now",
      "code block": "before<pre><code>let a = 1;\n  indented\n</code></pre>after",
      quote: "<blockquote>quoted<br>twice</blockquote>reply",
      link: 'see <a href="https://example.com/x">https://example.com/x</a>',
      "nested styles": "<strong>bold <em>both <del>all</del></em></strong> plain",
      "line breaks": "one<br>two<br><br>four",
      "escaped text": "1 &lt; 2 &amp;&amp; &quot;x&quot; &gt; &#39;y&#39;",
      "runs of spaces": "a &nbsp;&nbsp;b",
    };
    for (const [style, html] of Object.entries(canonical)) {
      it(`keeps ${style}`, () => {
        assert.equal(neutralToHtml(htmlToNeutral(html)), html);
      });
    }

    it("reads each style as the span a user would expect", () => {
      assert.deepEqual(htmlToNeutral(canonical["nested styles"] ?? ""), {
        text: "bold both all plain",
        spans: [
          { start: 0, end: 13, style: "bold" },
          { start: 5, end: 13, style: "italic" },
          { start: 10, end: 13, style: "strikethrough" },
        ],
      });
      assert.deepEqual(htmlToNeutral(canonical["code block"] ?? ""), {
        text: "before\nlet a = 1;\n  indented\nafter",
        spans: [{ start: 7, end: 28, style: "code-block" }],
      });
    });

    it("maps every alias tag to one style", () => {
      const html =
        "<b>1</b><strong>2</strong> <i>3</i><em>4</em> <s>5</s><del>6</del><strike>7</strike>";
      assert.deepEqual(htmlToNeutral(html).spans, [
        { start: 0, end: 2, style: "bold" },
        { start: 3, end: 5, style: "italic" },
        { start: 6, end: 9, style: "strikethrough" },
      ]);
    });
  });

  describe("neutral -> HTML -> neutral", () => {
    const texts: Record<string, NeutralText> = {
      "overlapping spans": n("abcdef", [
        { start: 0, end: 4, style: "bold" },
        { start: 2, end: 6, style: "italic" },
      ]),
      "quote then text": n("quoted\nreply", [{ start: 0, end: 6, style: "quote" }]),
      "code block with leading newline": n("x\n\n  code\ny", [
        { start: 2, end: 9, style: "code-block" },
      ]),
      "indented lines": n("a\n  b\nc  ", [{ start: 0, end: 1, style: "bold" }]),
    };
    for (const [name, text] of Object.entries(texts)) {
      it(`survives ${name}`, () => {
        const back = htmlToNeutral(neutralToHtml(text));
        assert.equal(back.text, text.text.trimEnd());
        assert.deepEqual(back.spans, text.spans);
      });
    }

    it("closes and reopens overlapping spans so the HTML nests", () => {
      assert.equal(
        neutralToHtml(texts["overlapping spans"] as NeutralText),
        "<strong>ab<em>cd</em></strong><em>ef</em>",
      );
    });
  });

  describe("hostile HTML", () => {
    it("drops script, style, iframe and img with their content", () => {
      const html =
        "<script>alert(1)</script><style>body{}</style>safe<iframe src='x'>frame text</iframe>" +
        "<img src=x onerror=alert(1) alt='alt text'> text";
      assert.deepEqual(htmlToNeutral(html), n("safe text"));
    });

    it("reads no attribute but href", () => {
      const html = '<b onclick="evil()" style="color:red" data-mx-color="#f00">x</b>';
      assert.equal(neutralToHtml(htmlToNeutral(html)), "<strong>x</strong>");
    });

    it("turns javascript: and data: links into their plain label", () => {
      const html =
        '<a href="javascript:alert(1)">click</a> <a href="data:text/html,x">d</a> <a href=" JaVaScRiPt:x">j</a>';
      const parsed = htmlToNeutral(html);
      assert.deepEqual(parsed, n("click d j"));
      assert.doesNotMatch(neutralToHtml(parsed), /href/);
    });

    it("never lets markup through as markup in the other direction", () => {
      const html = neutralToHtml(
        n('<script>x</script> "q"', [{ start: 0, end: 8, style: "bold" }]),
      );
      assert.equal(html, "<strong>&lt;script&gt;</strong>x&lt;/script&gt; &quot;q&quot;");
    });

    it("drops link spans from the network whose URL is not http(s), ftp, mailto or magnet", () => {
      const text = n("click", [{ start: 0, end: 5, style: "link", url: "javascript:alert(1)" }]);
      assert.equal(neutralToHtml(text), "click");
    });

    it("keeps the text linear in the input under hostile list nesting", () => {
      const html = "<ul><li>".repeat(5000) + "x";
      const parsed = htmlToNeutral(html);
      assert.ok(parsed.text.length < 2 * html.length, `text grew to ${parsed.text.length}`);
      assert.match(parsed.text, /\n {8}• x$/);
    });

    it("ignores spans outside the text or with nonsense offsets", () => {
      const text = n("abc", [
        { start: 2, end: 99, style: "bold" },
        { start: -5, end: 1, style: "italic" },
        { start: 2, end: 1, style: "strikethrough" },
        { start: 0.5, end: 2, style: "monospace" },
      ]);
      assert.equal(neutralToHtml(text), "<em>a</em>b<strong>c</strong>");
    });
  });

  describe("Matrix specifics", () => {
    it("removes the <mx-reply> fallback entirely", () => {
      const html =
        '<mx-reply><blockquote><a href="https://matrix.to/#/!room:x/$ev">In reply to</a> ' +
        '<a href="https://matrix.to/#/@bob:example.org">@bob:example.org</a><br>original</blockquote></mx-reply>' +
        "<b>my</b> answer";
      assert.deepEqual(htmlToNeutral(html), n("my answer", [{ start: 0, end: 2, style: "bold" }]));
    });

    it("flattens mention pills to their label", () => {
      const html =
        '<a href="https://matrix.to/#/@alice:example.org">Alice</a>, ' +
        '<a href="https://matrix.to/#/%40bob%3Aexample.org">Bob</a> and <a href="matrix:u/carol:example.org">Carol</a>';
      assert.deepEqual(htmlToNeutral(html), n("Alice, Bob and Carol"));
    });

    it("shows a mention without a label as the user id", () => {
      assert.deepEqual(
        htmlToNeutral('hi <a href="https://matrix.to/#/@alice:example.org"></a>'),
        n("hi @alice:example.org"),
      );
    });

    it("writes a link whose label differs from its URL as label (url)", () => {
      assert.deepEqual(htmlToNeutral('<a href="https://example.com/docs">the docs</a>'), {
        text: "the docs (https://example.com/docs)",
        spans: [{ start: 10, end: 34, style: "link", url: "https://example.com/docs" }],
      });
    });

    it("does not repeat a URL shown without its scheme", () => {
      assert.deepEqual(
        htmlToNeutral('<a href="https://example.com/">example.com</a>').text,
        "example.com",
      );
    });

    it("decodes named, decimal and hex entities", () => {
      assert.equal(
        htmlToNeutral("&amp; &lt; &gt; &quot; &#39; &eacute; &#233; &#x1F600;").text,
        "& < > \" ' é é 😀",
      );
    });

    it("reads paragraphs, headings and lists as lines", () => {
      const html =
        "<h1>Title</h1><p>first</p>\n<p>second</p><ul><li>a</li><li>b<ol><li>c</li></ol></li></ul>";
      assert.deepEqual(htmlToNeutral(html), {
        text: "Title\n\nfirst\n\nsecond\n\n• a\n• b\n  1. c",
        spans: [{ start: 0, end: 5, style: "bold" }],
      });
    });

    it("reads Element's Markdown list output without stray spaces or lines", () => {
      assert.equal(
        htmlToNeutral("<ul>\n<li>one</li>\n<li>two\n<ul>\n<li>nested</li>\n</ul>\n</li>\n</ul>\n")
          .text,
        "• one\n• two\n  • nested",
      );
      assert.equal(
        htmlToNeutral("<ol>\n<li>\n<p>loose</p>\n</li>\n<li>\n<p>two</p>\n</li>\n</ol>\n").text,
        "1. loose\n2. two",
      );
    });

    it("collapses source whitespace like a browser, except inside <pre>", () => {
      assert.equal(htmlToNeutral("  a \n  b  <pre>  x\n   y</pre>").text, "a b\n  x\n   y");
    });

    it("keeps the text of unknown tags and drops the tags", () => {
      assert.deepEqual(
        htmlToNeutral("<font color=red>red</font> <span data-mx-spoiler>s</span> <u>u</u>"),
        n("red s u"),
      );
    });
  });

  describe("plain body", () => {
    it("marks quotes and code blocks the way Matrix bodies do, inline styles not at all", () => {
      const text = n("quoted\nline\nsaid\ncode\nbold", [
        { start: 0, end: 11, style: "quote" },
        { start: 17, end: 21, style: "code-block" },
        { start: 22, end: 26, style: "bold" },
      ]);
      assert.equal(neutralToPlain(text), "> quoted\n> line\nsaid\n```\ncode\n```\nbold");
    });

    it("does not mark again blocks whose text keeps WhatsApp's own markers", () => {
      const body = "```\ncode\n```\n> a quote\n> more";
      const text = n(body, [
        { start: 0, end: 12, style: "code-block" },
        { start: 13, end: body.length, style: "quote" },
      ]);
      assert.equal(neutralToPlain(text), body);
    });

    it("is the text itself when there are no block styles", () => {
      assert.equal(neutralToPlain(n("a *b*", [{ start: 0, end: 1, style: "bold" }])), "a *b*");
    });
  });
});
