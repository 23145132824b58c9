import type { NeutralText, TextSpan } from "../../core/network.js";
import { dropCharacters } from "../../util/text-remap.js";

import { FENCE, QUOTE_PREFIX, STYLE_OF } from "./styling-directives.js";

export { renderStyling } from "./styling-render.js";

/**
 * Message styling of `<body>` (PROTOCOL.md §13.1): the XEP-0393 subset `*strong*`, `_emphasis_`,
 * `~strikethrough~`, `` `monospace` ``, blocks fenced by lines of ```` ``` ```` and lines starting
 * with `> ` as quotes.
 *
 * How markers map. §13.1 keeps the markers when a body is shown without styling, and XEP-0393 §6
 * recommends showing them styled like the text they apply to. `parseStyling` therefore gives two
 * readings of one body:
 * - `withMarkers`: `text` is the body verbatim and every span covers its own directives (`*x*`
 *   is bold over all three characters, a quote span covers its `> ` prefixes, a code block its
 *   fence lines). A plain rendering of it is exactly what the sender typed.
 * - `withoutMarkers`: the directives are removed and the spans remapped (`*x*` becomes bold `x`),
 *   for renderers that show styling instead of markers (Matrix `formatted_body`).
 * Offsets are UTF-16 code unit indexes into `text`, like every JavaScript string index.
 *
 * Parsing rules (XEP-0393 1.1): blocks first, then spans inside each line. A span opens at the
 * start of a line, after whitespace or right after a different opening directive, is not followed
 * by whitespace, and closes at the first same directive that is not preceded by whitespace and
 * leaves some text between the two (lazy matching; `**` and `****` stay plain). Spans never cross
 * a line, never nest inside a span of the same style, and nothing is styled inside monospace or a
 * code block. Unmatched directives are plain text.
 */
interface ParsedStyling {
  withMarkers: NeutralText;
  withoutMarkers: NeutralText;
}

const INLINE = STYLE_OF;
/** Deeper quotes are read as text of the deepest one, so hostile input cannot exhaust the stack. */
const MAX_QUOTE_DEPTH = 32;

/** Whitespace per XEP-0393's glossary: Unicode White_Space or General Category Z. */
const isStylingWhitespace = (ch: string | undefined): boolean =>
  ch !== undefined && /[\s\p{Z}]/u.test(ch);

interface Line {
  /** Where this line's content starts once enclosing quote prefixes are taken off. */
  content: number;
  /** End of the line without its `\n` (or `\r\n`). */
  end: number;
  /** Start of the next line, or the text's length. */
  next: number;
}

interface ParseState {
  text: string;
  spans: TextSpan[];
  /** 1 where a character is a directive (marker), for the `withoutMarkers` reading. */
  markers: Uint8Array;
  /** Per directive character: the nearest closing candidate at or after each index. */
  closers: Map<string, Int32Array>;
}

export function parseStyling(body: string): ParsedStyling {
  const state: ParseState = {
    text: body,
    spans: [],
    markers: new Uint8Array(body.length),
    closers: closingCandidates(body),
  };
  parseBlocks(state, splitLines(body), 0);
  const spans = sortSpans(state.spans);
  return {
    withMarkers: { text: body, spans },
    withoutMarkers: removeMarkers(body, spans, state.markers),
  };
}

export function sortSpans(spans: readonly TextSpan[]): TextSpan[] {
  return [...spans].sort(
    (a, b) => a.start - b.start || b.end - a.end || a.style.localeCompare(b.style),
  );
}

function splitLines(text: string): Line[] {
  const lines: Line[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf("\n", start);
    if (nl < 0) {
      lines.push({ content: start, end: text.length, next: text.length });
      return lines;
    }
    const end = nl > start && text[nl - 1] === "\r" ? nl - 1 : nl;
    lines.push({ content: start, end, next: nl + 1 });
    start = nl + 1;
  }
}

function parseBlocks(state: ParseState, lines: readonly Line[], depth: number): void {
  const { text } = state;
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] as Line;
    // A line such as ```x``` is inline monospace (WhatsApp's), not the fence of a block.
    if (
      text.startsWith(FENCE, line.content) &&
      inlineFence(text, line.content, line.content, line.end) === undefined
    ) {
      i = codeBlock(state, lines, i);
    } else if (depth < MAX_QUOTE_DEPTH && isQuoteLine(text, line)) {
      let j = i;
      const inner: Line[] = [];
      for (; j < lines.length && isQuoteLine(text, lines[j] as Line); j++) {
        const l = lines[j] as Line;
        state.markers.fill(1, l.content, l.content + QUOTE_PREFIX.length);
        inner.push({ ...l, content: l.content + QUOTE_PREFIX.length });
      }
      const last = lines[j - 1] as Line;
      // `open` of a quote counts at the start of each of its lines (see TextSpan.markers).
      state.spans.push({
        start: line.content,
        end: last.end,
        style: "quote",
        markers: { open: QUOTE_PREFIX.length, close: 0 },
      });
      parseBlocks(state, inner, depth + 1);
      i = j;
    } else {
      parseSpans(state, line.content, line.end, "");
      i++;
    }
  }
}

const isQuoteLine = (text: string, line: Line): boolean =>
  line.end - line.content >= QUOTE_PREFIX.length && text.startsWith(QUOTE_PREFIX, line.content);

/** A block from a fence line to a line of exactly ```` ``` ```` or the end of the parent block. */
function codeBlock(state: ParseState, lines: readonly Line[], first: number): number {
  const { text } = state;
  const open = lines[first] as Line;
  let j = first + 1;
  while (j < lines.length) {
    const l = lines[j] as Line;
    if (text.slice(l.content, l.end) === FENCE) break;
    j++;
  }
  const closed = j < lines.length;
  const last = lines[closed ? j : lines.length - 1] as Line;
  // The fence line's own line break is a marker only when the block has lines after it.
  const openEnd = last === open ? open.end : open.next;
  // Unterminated, the block ends with the text; a final line break before the end is no content.
  const trailingEmpty = !closed && last !== open && last.end === last.content;
  const closeStart =
    closed || trailingEmpty ? (lines[(closed ? j : lines.length - 1) - 1] as Line).end : last.end;
  state.spans.push({
    start: open.content,
    end: last.end,
    style: "code-block",
    markers: { open: openEnd - open.content, close: last.end - closeStart },
  });
  state.markers.fill(1, open.content, openEnd);
  state.markers.fill(1, closeStart, last.end);
  return closed ? j + 1 : lines.length;
}

function parseSpans(state: ParseState, from: number, to: number, outer: string): void {
  const { text } = state;
  let i = from;
  while (i < to) {
    const ch = text[i] as string;
    const style = INLINE[ch];
    const fenced = ch === "`" && !outer.includes(ch) ? inlineFence(text, i, from, to) : undefined;
    if (fenced !== undefined) {
      // WhatsApp's ```monospace``` within a line: one span, its three-character markers hidden.
      state.spans.push({
        start: i,
        end: fenced + FENCE.length,
        style: "monospace",
        markers: { open: FENCE.length, close: FENCE.length },
      });
      state.markers.fill(1, i, i + FENCE.length);
      state.markers.fill(1, fenced, fenced + FENCE.length);
      i = fenced + FENCE.length;
      continue;
    }
    if (
      style !== undefined &&
      !outer.includes(ch) &&
      (i === from || isStylingWhitespace(text[i - 1])) &&
      i + 1 < to &&
      !isStylingWhitespace(text[i + 1])
    ) {
      const close = findClose(state, ch, i, to);
      if (close !== undefined) {
        state.spans.push({ start: i, end: close + 1, style, markers: { open: 1, close: 1 } });
        state.markers[i] = 1;
        state.markers[close] = 1;
        if (style !== "monospace") parseSpans(state, i + 1, close, outer + ch);
        i = close + 1;
        continue;
      }
    }
    i++;
  }
}

/**
 * Where a ```` ``` ```` that opens at `i` (line start or after whitespace, text right after it)
 * closes on the same line, after some text and not after whitespace; undefined if it does not.
 */
function inlineFence(text: string, i: number, from: number, to: number): number | undefined {
  if (!text.startsWith(FENCE, i) || (i !== from && !isStylingWhitespace(text[i - 1]))) {
    return undefined;
  }
  const inner = i + FENCE.length;
  if (inner >= to || text[inner] === "`" || isStylingWhitespace(text[inner])) return undefined;
  const close = text.indexOf(FENCE, inner + 1);
  if (close < 0 || close + FENCE.length > to || isStylingWhitespace(text[close - 1])) {
    return undefined;
  }
  return close;
}

/** The first closing directive for an opening at `open`, with some non-directive text between. */
function findClose(state: ParseState, ch: string, open: number, to: number): number | undefined {
  // Content made only of this directive (`**`, `***`) is no text: skip past the run.
  let run = open + 1;
  while (run < to && state.text[run] === ch) run++;
  const k = (state.closers.get(ch) as Int32Array)[Math.max(open + 2, run + 1)] ?? -1;
  return k >= 0 && k < to ? k : undefined;
}

/** For each directive character, index -> nearest position >= index that could close a span. */
function closingCandidates(text: string): Map<string, Int32Array> {
  const map = new Map<string, Int32Array>();
  const inUrl = insideUrls(text);
  for (const ch of Object.keys(INLINE)) {
    const next = new Int32Array(text.length + 2).fill(-1);
    for (let i = text.length - 1; i >= 0; i--) {
      const candidate =
        text[i] === ch && i > 0 && !isStylingWhitespace(text[i - 1]) && inUrl[i] === 0;
      next[i] = candidate ? i : (next[i + 1] as number);
    }
    map.set(ch, next);
  }
  return map;
}

/**
 * 1 at every character of a URL (http, https or www.) in the text. A directive there is part of the address
 * (`https://x.org/a_b_c`), not a closing one: styling it would cut the link that Matrix clients
 * linkify. Openings need whitespace before them, so none can sit inside a URL anyway. Directives and
 * punctuation that end a URL are taken as after it, so `_https://x.org/x_` is still emphasis.
 */
function insideUrls(text: string): Uint8Array {
  const inside = new Uint8Array(text.length);
  for (const m of text.matchAll(/\b(?:https?:\/\/|www\.)[^\s<>]+/giu)) {
    const url = m[0].replace(/[*_~`.,;:!?'")\]]+$/u, "");
    inside.fill(1, m.index, m.index + url.length);
  }
  return inside;
}

function removeMarkers(text: string, spans: readonly TextSpan[], markers: Uint8Array): NeutralText {
  const { kept, position } = dropCharacters(text, markers);
  const remapped: TextSpan[] = [];
  for (const s of spans) {
    const start = position[s.start] as number;
    const end = position[s.end] as number;
    if (end > start) remapped.push({ start, end, style: s.style });
  }
  return { text: kept, spans: sortSpans(remapped) };
}
