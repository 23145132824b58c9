import type { NeutralText, TextSpan } from "../../core/network.js";
import { stripMarkers } from "./markers.js";
import { normalizeSpans } from "./spans.js";

/**
 * The neutral model to Matrix: `formatted_body` in the spec's HTML subset, and the plain `body`.
 * All text is escaped; the only attribute written is a link's `href`, and only for the schemes
 * normalizeSpans lets through.
 */

const ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

const isBlock = (s: TextSpan): boolean => s.style === "quote" || s.style === "code-block";

function openTag(span: TextSpan): string {
  switch (span.style) {
    case "bold":
      return "<strong>";
    case "italic":
      return "<em>";
    case "strikethrough":
      return "<del>";
    case "monospace":
      return "<code>";
    case "code-block":
      return "<pre><code>";
    case "quote":
      return "<blockquote>";
    case "link":
      return `<a href="${escapeHtml(span.url ?? "")}">`;
  }
}

function closeTag(span: TextSpan): string {
  switch (span.style) {
    case "bold":
      return "</strong>";
    case "italic":
      return "</em>";
    case "strikethrough":
      return "</del>";
    case "monospace":
      return "</code>";
    case "code-block":
      return "</code></pre>";
    case "quote":
      return "</blockquote>";
    case "link":
      return "</a>";
  }
}

/** Whether HTML whitespace collapsing would swallow this space (line edge or after another space). */
function collapsible(text: string, i: number): boolean {
  const before = text[i - 1];
  const after = text[i + 1];
  return (
    before === undefined ||
    before === "\n" ||
    before === " " ||
    after === undefined ||
    after === "\n"
  );
}

/**
 * Renders spans as properly nested HTML: where spans overlap without nesting, the inner ones are
 * closed and reopened around the boundary. Line breaks become `<br>` except inside code blocks,
 * and the line break right before or after a block element is dropped because the block already
 * breaks the line (so the HTML reads back to the same text).
 */
export function neutralToHtml(marked: NeutralText): string {
  // HTML shows the styling, so the network's markers that the plain body keeps are left out.
  const input = stripMarkers(marked);
  const { text } = input;
  const spans = normalizeSpans(text, input.spans);
  const skipNewline = new Set<number>();
  for (const s of spans.filter(isBlock)) {
    if (text[s.start - 1] === "\n") skipNewline.add(s.start - 1);
    if (text[s.end] === "\n") skipNewline.add(s.end);
  }
  const bounds = [...new Set([0, text.length, ...spans.flatMap((s) => [s.start, s.end])])].sort(
    (a, b) => a - b,
  );
  const stack: TextSpan[] = [];
  let html = "";
  let next = 0;
  for (let b = 0; b < bounds.length; b++) {
    const pos = bounds[b] ?? 0;
    const firstEnding = stack.findIndex((s) => s.end === pos);
    if (firstEnding >= 0) {
      const popped = stack.splice(firstEnding);
      for (const s of [...popped].reverse()) {
        if (s.style === "code-block" && s.end === pos) html += "\n";
        html += closeTag(s);
      }
      for (const s of popped.filter((s) => s.end !== pos)) {
        html += openTag(s);
        stack.push(s);
      }
    }
    while (next < spans.length && spans[next]?.start === pos) {
      const s = spans[next++] as TextSpan;
      html += openTag(s);
      // A newline directly after <pre> is not content when read back: keep a leading one.
      if (s.style === "code-block" && text[pos] === "\n") html += "\n";
      stack.push(s);
    }
    const until = bounds[b + 1] ?? text.length;
    const inCode = stack.some((s) => s.style === "code-block");
    for (let i = pos; i < until; i++) {
      const c = text[i] ?? "";
      if (c === " " && !inCode && collapsible(text, i)) html += "&nbsp;";
      else if (c !== "\n") html += escapeHtml(c);
      else if (skipNewline.has(i)) continue;
      else html += inCode ? "\n" : "<br>";
    }
  }
  return html;
}

/**
 * The plain `body` for a formatted text: the text itself, with quotes as `> ` lines and code blocks
 * fenced by ``` lines, the Markdown that Matrix clients also put in `body`. Inline styles leave no
 * marks, so the body stays readable in notifications and search.
 */
export function neutralToPlain(input: NeutralText): string {
  const { text } = input;
  // Blocks whose markers the network declared are already written as the sender typed them.
  const declared = input.spans.filter((s) => s.markers !== undefined && isBlock(s));
  const blocks = normalizeSpans(text, input.spans).filter(isBlock);
  let out = "";
  let pos = 0;
  for (const block of blocks) {
    if (block.start < pos) continue;
    out += text.slice(pos, block.start);
    if (out !== "" && !out.endsWith("\n")) out += "\n";
    const inner = text.slice(block.start, block.end);
    const marked = declared.some((d) => d.start === block.start && d.end === block.end);
    out +=
      marked || alreadyMarked(block, inner)
        ? inner
        : block.style === "quote"
          ? inner
              .split("\n")
              .map((line) => `> ${line}`)
              .join("\n")
          : "```\n" + inner + "\n```";
    pos = block.end;
    if (pos < text.length && text[pos] !== "\n") out += "\n";
  }
  return out + text.slice(pos);
}

/**
 * Whether a block span already covers its own Markdown-like markers: a network that keeps its
 * styling directives in the text (WhatsApp's `> ` quotes and ``` fences, §13.1) must not get them
 * a second time in `body`.
 */
function alreadyMarked(block: TextSpan, inner: string): boolean {
  if (block.style === "quote") return inner.split("\n").every((line) => line.startsWith("> "));
  return /^```[^\n]*\n/.test(inner) && /\n```$/.test(inner);
}

/** Whether the text needs a `formatted_body` at all. */
export function hasFormatting(input: NeutralText): boolean {
  return normalizeSpans(input.text, input.spans).length > 0;
}
