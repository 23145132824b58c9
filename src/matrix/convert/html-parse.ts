import { Parser } from "htmlparser2";
import type { NeutralText, TextSpan } from "../../core/network.js";
import { normalizeSpans } from "./spans.js";
import { mentionedUserId, safeLinkUrl, sameLink } from "./links.js";

/**
 * Matrix `formatted_body` (org.matrix.custom.html) to the neutral model. The HTML comes from any
 * client, so this is an allow-list reader over htmlparser2's events, not a sanitizer that repairs
 * markup: allowed tags become spans or line structure, tags whose content is not message text are
 * dropped with their content, everything else contributes only its text. No attribute but `href`
 * is ever read.
 */

type Style = TextSpan["style"];

const INLINE: Readonly<Record<string, Style>> = {
  b: "bold",
  strong: "bold",
  i: "italic",
  em: "italic",
  s: "strikethrough",
  del: "strikethrough",
  strike: "strikethrough",
  code: "monospace",
};

/** Dropped with everything inside: not text a person wrote, or the rich-reply fallback. */
const SKIP = new Set([
  "mx-reply",
  "script",
  "style",
  "iframe",
  "frame",
  "frameset",
  "object",
  "embed",
  "img",
  "video",
  "audio",
  "canvas",
  "svg",
  "math",
  "template",
  "noscript",
  "head",
  "title",
  "textarea",
  "select",
  "button",
  "input",
]);

/** Line structure only: their text is kept on lines of its own, without styling. */
const BLOCK = new Set([
  "div",
  "table",
  "thead",
  "tbody",
  "tr",
  "hr",
  "details",
  "summary",
  "dl",
  "dt",
  "dd",
  "figure",
  "figcaption",
  "caption",
  "section",
  "article",
  "header",
  "footer",
]);

const HEADING = /^h[1-6]$/;
const MAX_INDENT = 4;

interface Frame {
  tag: string;
  skip: boolean;
  style?: Style;
  /** How an `<a>` ends: a mention keeps its label, a link gets a link span, "text" drops the href. */
  link?: { kind: "mention"; userId: string } | { kind: "link"; url: string } | { kind: "text" };
  list?: { ordered: boolean; next: number };
  /** Paragraph-like blocks ask for a blank line around them, other blocks for a line break. */
  breakAfter?: number;
  /** Offset of the first character of content, set lazily so blocks' line breaks stay outside. */
  start?: number;
}

class Reader {
  private out = "";
  private readonly spans: TextSpan[] = [];
  private readonly stack: Frame[] = [];
  private readonly lists: NonNullable<Frame["list"]>[] = [];
  /** Frames from this index up have no `start` yet (bounds the work per append on deep nesting). */
  private unstarted = 0;
  private skipDepth = 0;
  private preDepth = 0;
  private pendingBreak = 0;
  /** The output ends with a space produced by whitespace collapsing (droppable at line ends). */
  private trailingSpace = false;
  /** A `<pre>` just opened: a newline right after it is not content (as in HTML). */
  private preFresh = false;
  /** A list bullet was just written: a paragraph opening in the item must not break the line. */
  private afterBullet = false;

  open(tag: string, href: string | undefined): void {
    const frame: Frame = { tag, skip: this.skipDepth > 0 || SKIP.has(tag) };
    this.stack.push(frame);
    if (frame.skip) {
      this.skipDepth++;
      return;
    }
    const inline = INLINE[tag];
    if (inline !== undefined) {
      // Inside a code block, <code> is the block's own wrapper, not inline monospace.
      if (!(tag === "code" && this.preDepth > 0)) frame.style = inline;
    } else if (tag === "a") {
      frame.link = classifyHref(href);
    } else if (tag === "br") {
      this.lineBreak();
    } else if (tag === "pre") {
      this.block(frame, 1);
      frame.style = "code-block";
      this.preDepth++;
      this.preFresh = true;
    } else if (tag === "blockquote") {
      this.block(frame, 1);
      frame.style = "quote";
    } else if (tag === "p") {
      // Loose list items wrap their text in <p>: that must not open a blank line in the item.
      const lines = this.lists.length > 0 ? 1 : 2;
      if (this.afterBullet) frame.breakAfter = lines;
      else this.block(frame, lines);
    } else if (tag === "ul" || tag === "ol") {
      this.block(frame, 1);
      frame.list = { ordered: tag === "ol", next: 1 };
      this.lists.push(frame.list);
    } else if (tag === "li") {
      this.block(frame, 1);
      this.bullet();
    } else if (HEADING.test(tag)) {
      this.block(frame, 1);
      frame.style = "bold";
    } else if (BLOCK.has(tag)) {
      this.block(frame, 1);
    } else if (tag === "td" || tag === "th") {
      this.text(" ");
    }
  }

  close(tag: string): void {
    let index = this.stack.length - 1;
    while (index >= 0 && this.stack[index]?.tag !== tag) index--;
    if (index < 0) return;
    while (this.stack.length > index) {
      const frame = this.stack.pop();
      this.unstarted = Math.min(this.unstarted, this.stack.length);
      if (frame !== undefined) this.closeFrame(frame);
    }
  }

  text(data: string): void {
    if (this.skipDepth > 0 || data === "") return;
    if (this.preDepth > 0) {
      let s = data.replace(/\r\n?/g, "\n");
      if (this.preFresh && s.startsWith("\n")) s = s.slice(1);
      this.preFresh = false;
      if (s !== "") this.append(s);
      return;
    }
    this.preFresh = false;
    let s = data.replace(/[ \t\n\r\f]+/g, " ");
    if (s.startsWith(" ")) {
      s = s.slice(1);
      if (!this.atLineStart() && !this.trailingSpace) {
        this.out += " ";
        this.trailingSpace = true;
      }
    }
    if (s === "") return;
    const endsWithSpace = s.endsWith(" ");
    // A no-break space is how HTML keeps runs of spaces; the neutral text wants plain spaces.
    this.append(s.replace(/\u00a0/g, " "));
    this.trailingSpace = endsWithSpace;
  }

  finish(): NeutralText {
    let text = this.out;
    const lead = text.length - text.trimStart().length;
    text = text.trim();
    const spans = this.spans.map((s) => ({ ...s, start: s.start - lead, end: s.end - lead }));
    return { text, spans: normalizeSpans(text, spans) };
  }

  private closeFrame(frame: Frame): void {
    if (frame.skip) {
      this.skipDepth--;
      return;
    }
    if (frame.style === "code-block") {
      this.preDepth--;
      this.preFresh = false;
      // Clients end a code block's text with a newline that is markup, not content.
      if (frame.start !== undefined && this.out.length > frame.start && this.out.endsWith("\n")) {
        this.out = this.out.slice(0, -1);
      }
    }
    if (frame.list !== undefined) this.lists.pop();
    if (frame.link !== undefined) this.closeLink(frame, frame.link);
    if (frame.style !== undefined && frame.start !== undefined) {
      const span: TextSpan = { start: frame.start, end: this.out.length, style: frame.style };
      if (span.end > span.start) this.spans.push(span);
    }
    if (frame.breakAfter !== undefined) this.requestBreak(frame.breakAfter);
  }

  private closeLink(frame: Frame, link: NonNullable<Frame["link"]>): void {
    if (link.kind === "text") return;
    const label = frame.start === undefined ? "" : this.out.slice(frame.start);
    if (link.kind === "mention") {
      if (label.trim() === "") this.append(link.userId);
      return;
    }
    if (label.trim() === "" || sameLink(label.trim(), link.url)) {
      if (label.trim() === "") this.append(link.url);
      const start = frame.start ?? this.out.length - link.url.length;
      this.spans.push({ start, end: this.out.length, style: "link", url: link.url });
      return;
    }
    this.append(" (");
    const start = this.out.length;
    this.append(link.url);
    this.spans.push({ start, end: this.out.length, style: "link", url: link.url });
    this.append(")");
  }

  private block(frame: Frame, lines: number): void {
    this.requestBreak(lines);
    frame.breakAfter = lines;
  }

  private bullet(): void {
    const list = this.lists[this.lists.length - 1];
    const marker = list?.ordered === true ? `${list.next++}. ` : "• ";
    // Bounded so that hostile nesting cannot inflate the text quadratically.
    const indent = Math.min(Math.max(0, this.lists.length - 1), MAX_INDENT);
    this.append("  ".repeat(indent) + marker);
    this.afterBullet = true;
  }

  private requestBreak(lines: number): void {
    this.pendingBreak = Math.max(this.pendingBreak, lines);
  }

  private lineBreak(): void {
    this.flushBreaks();
    this.dropTrailingSpace();
    this.out += "\n";
    this.afterBullet = false;
  }

  private atLineStart(): boolean {
    return this.out === "" || this.out.endsWith("\n") || this.pendingBreak > 0 || this.afterBullet;
  }

  private append(s: string): void {
    this.flushBreaks();
    for (let i = this.unstarted; i < this.stack.length; i++) {
      const frame = this.stack[i];
      if (frame !== undefined) frame.start ??= this.out.length;
    }
    this.unstarted = this.stack.length;
    this.out += s;
    this.trailingSpace = false;
    this.afterBullet = false;
  }

  private flushBreaks(): void {
    const wanted = this.pendingBreak;
    this.pendingBreak = 0;
    if (wanted === 0 || this.out === "") return;
    this.dropTrailingSpace();
    let present = 0;
    while (present < wanted && this.out[this.out.length - 1 - present] === "\n") present++;
    this.out += "\n".repeat(wanted - present);
  }

  private dropTrailingSpace(): void {
    if (!this.trailingSpace) return;
    this.out = this.out.slice(0, -1);
    this.trailingSpace = false;
  }
}

function classifyHref(href: string | undefined): NonNullable<Frame["link"]> {
  if (href === undefined) return { kind: "text" };
  const userId = mentionedUserId(href);
  if (userId !== undefined) return { kind: "mention", userId };
  const url = safeLinkUrl(href);
  return url === undefined ? { kind: "text" } : { kind: "link", url };
}

/** Converts Matrix HTML to neutral text. Total: any string yields a result. */
export function htmlToNeutral(html: string): NeutralText {
  const reader = new Reader();
  const parser = new Parser(
    {
      onopentag: (name, attribs) => reader.open(name, attribs["href"]),
      onclosetag: (name) => reader.close(name),
      ontext: (data) => reader.text(data),
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  );
  parser.write(html);
  parser.end();
  return reader.finish();
}
