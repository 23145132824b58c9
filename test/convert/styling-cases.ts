/**
 * One table of WhatsApp styling (§13.1, XEP-0393) <-> Matrix HTML cases, read by the tests of
 * both directions. `wa` is the body as the WhatsApp user typed it; `html` the `formatted_body` the
 * Matrix user sees (undefined: plain text, no `formatted_body`). `body` is Matrix's plain `body`
 * when it differs from `wa` (§13.1: markers stay in a display without styling).
 * `direction` says which way the case holds: both, only WhatsApp -> Matrix (`w2m`: what a Matrix
 * user cannot type that way) or only Matrix -> WhatsApp (`m2w`).
 */
export interface StylingCase {
  name: string;
  wa: string;
  html: string | undefined;
  body?: string;
  direction: "both" | "w2m" | "m2w";
}

export const STYLING_CASES: readonly StylingCase[] = [
  {
    name: "bold, italic and strikethrough",
    wa: "*bold* _italic_ ~strike~",
    html: "<strong>bold</strong> <em>italic</em> <del>strike</del>",
    direction: "both",
  },
  {
    name: "inline monospace",
    wa: "run `npm test` now",
    html: "run <code>npm test</code> now",
    direction: "both",
  },
  {
    name: "WhatsApp's ```monospace``` alone",
    wa: "```code```",
    html: "<code>code</code>",
    direction: "w2m",
  },
  {
    name: "WhatsApp's ```monospace``` inside a line",
    wa: "see ```x = 1``` here",
    html: "see <code>x = 1</code> here",
    direction: "w2m",
  },
  {
    name: "nested styles",
    wa: "*bold _both_*",
    html: "<strong>bold <em>both</em></strong>",
    direction: "both",
  },
  {
    name: "nested at both ends",
    wa: "*_both_*",
    html: "<strong><em>both</em></strong>",
    direction: "w2m",
  },
  {
    name: "adjacent spans",
    wa: "*a* _b_ ~c~",
    html: "<strong>a</strong> <em>b</em> <del>c</del>",
    direction: "both",
  },
  {
    name: "unterminated directive stays text",
    wa: "*not bold",
    html: undefined,
    direction: "both",
  },
  { name: "a lone directive pair is text", wa: "2 * 3 * 4", html: undefined, direction: "both" },
  {
    name: "code block with markers inside",
    wa: "```\n*not bold* _x_\n```",
    html: "<pre><code>*not bold* _x_\n</code></pre>",
    direction: "both",
  },
  {
    name: "a fence line inside code stays in the block",
    wa: "```\nx\n``` \n*y*\n```",
    html: "<pre><code>x\n``` \n*y*\n</code></pre>",
    direction: "both",
  },
  {
    name: "a Matrix code line of exactly ``` does not close the WhatsApp block",
    wa: "```\nx\n``` \n*y*\n```",
    html: "<pre><code>x\n```\n*y*\n</code></pre>",
    direction: "m2w",
  },
  {
    name: "unterminated code block runs to the end",
    wa: "```\nlet a = 1;",
    html: "<pre><code>let a = 1;\n</code></pre>",
    direction: "w2m",
  },
  { name: "a lone fence line is text", wa: "```", html: undefined, direction: "both" },
  { name: "an empty code block is text", wa: "```\n```", html: undefined, direction: "w2m" },
  { name: "an empty quote line is text", wa: "> ", html: undefined, direction: "both" },
  {
    name: "quote with styling inside",
    wa: "> *quoted*\nreply",
    html: "<blockquote><strong>quoted</strong></blockquote>reply",
    direction: "both",
  },
  {
    name: "URL with underscores and stars",
    wa: "see https://example.com/a_b_c_/*x*",
    html: undefined,
    direction: "both",
  },
  {
    name: "underscores inside a URL close nothing",
    wa: "_see https://x.org/a_b_c",
    html: undefined,
    direction: "both",
  },
  {
    name: "a URL inside a styled span stays whole",
    wa: "_see https://x.org/a_b_c_",
    html: "<em>see https://x.org/a_b_c</em>",
    direction: "w2m",
  },
  {
    name: "underscores inside a www. address close nothing",
    wa: "_see www.x.org/a_b_c",
    html: undefined,
    direction: "both",
  },
  {
    name: "stars inside a URL close nothing",
    wa: "*see https://x.org/*x and more",
    html: undefined,
    direction: "both",
  },
  {
    name: "a styled URL",
    wa: "_https://example.com/x_",
    html: "<em>https://example.com/x</em>",
    direction: "w2m",
  },
  {
    name: "link with a label",
    wa: "read the docs (https://example.com/docs)",
    html: 'read <a href="https://example.com/docs">the docs</a>',
    direction: "m2w",
  },
  {
    name: "mention of a Matrix user",
    wa: "hi Alice",
    html: 'hi <a href="https://matrix.to/#/@alice:example.org">Alice</a>',
    direction: "m2w",
  },
  {
    name: "HTML-looking text is escaped",
    wa: "*<b>x</b>*",
    html: "<strong>&lt;b&gt;x&lt;/b&gt;</strong>",
    direction: "both",
  },
];
