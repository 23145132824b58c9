import type { NeutralText, TextSpan } from "../../core/network.js";
import { DIRECTIVE_OF, FENCE, QUOTE_PREFIX } from "./styling-directives.js";

/**
 * NeutralText (styling without markers, as Matrix HTML gives it) -> a §13.1 body: bold `*x*`,
 * italic `_x_`, strikethrough `~x~`, monospace `` `x` ``, code blocks fenced by ```` ``` ```` lines,
 * quotes as `> ` lines, links as `label (url)` (or the bare URL when the label is the URL).
 *
 * XEP-0393 has no escapes, so a style is written only where the receiver will read it back:
 * inline spans are cut at line ends and trimmed of whitespace; a span is left unstyled (its text
 * kept, no markers) when its opening would not follow whitespace or a line start (mid-word), when
 * its text contains its own directive, when it crosses another span, or when it sits inside
 * monospace. Block spans that start or end mid-line get a line break there. Directive characters
 * the user typed as text are sent as they are.
 */
export function renderStyling(input: NeutralText): string {
  const text = input.text;
  const spans = input.spans.filter((s) => validSpan(s, text.length));
  const trimmed = spans
    .filter((s) => s.style === "code-block" || s.style === "quote")
    .map((s) => trimLineBreaks(text, s))
    .filter((s): s is TextSpan => s !== undefined);
  const quotes = trimmed.filter((s) => s.style === "quote");
  const codes = unionOf(trimmed.filter((s) => s.style === "code-block"));
  const segments = splitSegments(text, [...quotes, ...codes]);
  const depth = quoteDepths(text.length, quotes);
  const suffixes = linkSuffixes(text, spans);
  const piecesBySegment = clipToSegments(text, segments, mergeTouching(spans));

  const out: string[] = [];
  let openFence: { block: TextSpan; prefix: string } | undefined;
  segments.forEach((seg, index) => {
    const prefix = QUOTE_PREFIX.repeat(depth[seg.start] ?? 0);
    const code = codes.find((b) => b.start <= seg.start && seg.start < b.end);
    if (openFence !== undefined && openFence.block !== code) {
      out.push(`${openFence.prefix}${FENCE}`);
      openFence = undefined;
    }
    if (code !== undefined && openFence === undefined) {
      openFence = { block: code, prefix };
      out.push(`${prefix}${FENCE}`);
    }
    const candidates = code === undefined ? (piecesBySegment[index] ?? []) : [];
    const pieces = resolvePieces(text, seg, candidates, suffixes);
    // A code line of exactly ``` would close the block early and let the rest out as styled
    // text; XEP-0393 has no escape, so it gets a trailing space (no longer a fence, looks alike).
    const fenceInCode = code !== undefined && text.slice(seg.start, seg.end) === FENCE;
    out.push(prefix + renderSegment(text, seg, pieces, suffixes) + (fenceInCode ? " " : ""));
  });
  if (openFence !== undefined) out.push(`${openFence.prefix}${FENCE}`);
  return out.join("\n");
}

const DIRECTIVE = DIRECTIVE_OF;
const STYLES: readonly TextSpan["style"][] = [
  "bold",
  "italic",
  "strikethrough",
  "monospace",
  "code-block",
  "quote",
  "link",
];

interface Segment {
  start: number;
  end: number;
}

interface Piece {
  start: number;
  end: number;
  ch: string;
  monospace: boolean;
  /** Nesting level among the segment's pieces: openings go outer first, closings inner first. */
  depth: number;
}

const isWs = (ch: string | undefined): boolean => ch !== undefined && /[\s\p{Z}]/u.test(ch);

function validSpan(s: TextSpan, length: number): boolean {
  return (
    Number.isInteger(s.start) &&
    Number.isInteger(s.end) &&
    s.start >= 0 &&
    s.end <= length &&
    s.start < s.end &&
    STYLES.includes(s.style)
  );
}

/** Overlapping code blocks become one: a code block has no inner structure. */
function unionOf(blocks: readonly TextSpan[]): TextSpan[] {
  const out: TextSpan[] = [];
  for (const b of [...blocks].sort((x, y) => x.start - y.start)) {
    const last = out[out.length - 1];
    if (last !== undefined && b.start <= last.end) last.end = Math.max(last.end, b.end);
    else out.push({ ...b });
  }
  return out;
}

/** Inline spans of one style that overlap or touch become one before they are cut and trimmed. */
function mergeTouching(spans: readonly TextSpan[]): TextSpan[] {
  const out: TextSpan[] = [];
  for (const style of Object.keys(DIRECTIVE) as TextSpan["style"][]) {
    const same = spans.filter((s) => s.style === style).sort((a, b) => a.start - b.start);
    let current: TextSpan | undefined;
    for (const s of same) {
      if (current !== undefined && s.start <= current.end) {
        current.end = Math.max(current.end, s.end);
      } else {
        if (current !== undefined) out.push(current);
        current = { start: s.start, end: s.end, style };
      }
    }
    if (current !== undefined) out.push(current);
  }
  return out;
}

/** Quote nesting depth at every position (segments never straddle a quote boundary). */
function quoteDepths(length: number, quotes: readonly TextSpan[]): Int32Array {
  const depth = new Int32Array(length + 1);
  for (const q of quotes) {
    depth[q.start] = (depth[q.start] as number) + 1;
    depth[q.end] = (depth[q.end] as number) - 1;
  }
  for (let i = 1; i <= length; i++) depth[i] = (depth[i] as number) + (depth[i - 1] as number);
  return depth;
}

function trimLineBreaks(text: string, s: TextSpan): TextSpan | undefined {
  let { start, end } = s;
  while (start < end && (text[start] === "\n" || text[start] === "\r")) start++;
  while (end > start && (text[end - 1] === "\n" || text[end - 1] === "\r")) end--;
  return end > start ? { start, end, style: s.style } : undefined;
}

/** Lines of the text, also cut where a block span starts or ends mid-line. */
function splitSegments(text: string, blocks: readonly TextSpan[]): Segment[] {
  const cuts = new Map<number, boolean>();
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) cuts.set(i, true);
  for (const b of blocks) {
    if (b.start > 0 && text[b.start - 1] !== "\n" && !cuts.has(b.start)) cuts.set(b.start, false);
    if (b.end < text.length && text[b.end] !== "\n" && !cuts.has(b.end)) cuts.set(b.end, false);
  }
  const segments: Segment[] = [];
  let start = 0;
  for (const [pos, consumesNewline] of [...cuts].sort((a, b) => a[0] - b[0])) {
    segments.push({ start, end: pos });
    start = consumesNewline ? pos + 1 : pos;
  }
  segments.push({ start, end: text.length });
  return segments;
}

function linkSuffixes(text: string, spans: readonly TextSpan[]): Map<number, string> {
  const suffixes = new Map<number, string>();
  for (const s of spans) {
    if (s.style !== "link" || typeof s.url !== "string" || s.url.trim() === "") continue;
    const url = s.url.trim();
    if (sameAsLabel(text.slice(s.start, s.end).trim(), url)) continue;
    suffixes.set(s.end, `${suffixes.get(s.end) ?? ""} (${url})`);
  }
  return suffixes;
}

function sameAsLabel(label: string, url: string): boolean {
  const bare = url.replace(/^(?:https?:\/\/|mailto:|tel:)/i, "").replace(/\/$/, "");
  return label === url || label === bare;
}

/** Inline spans cut to the segments they touch and trimmed of whitespace, per segment index. */
function clipToSegments(text: string, segments: readonly Segment[], spans: readonly TextSpan[]) {
  const bySegment: Piece[][] = segments.map(() => []);
  for (const s of spans) {
    const ch = DIRECTIVE[s.style];
    if (ch === undefined) continue;
    for (let i = segmentAt(segments, s.start); i < segments.length; i++) {
      const seg = segments[i] as Segment;
      if (seg.start >= s.end) break;
      let start = Math.max(s.start, seg.start);
      let end = Math.min(s.end, seg.end);
      while (start < end && isWs(text[start])) start++;
      while (end > start && isWs(text[end - 1])) end--;
      if (start < end) {
        const monospace = s.style === "monospace";
        (bySegment[i] as Piece[]).push({ start, end, ch, monospace, depth: 0 });
      }
    }
  }
  return bySegment;
}

/** Index of the last segment starting at or before `pos`. */
function segmentAt(segments: readonly Segment[], pos: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((segments[mid] as Segment).start <= pos) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The pieces of one segment that can be written so that they parse back (see above). */
function resolvePieces(
  text: string,
  seg: Segment,
  candidates: readonly Piece[],
  suffixes: ReadonlyMap<number, string>,
): Piece[] {
  const merged = mergeSameStyle(candidates).filter((p) => !containsDirective(text, p, suffixes));
  merged.sort((a, b) => a.start - b.start || b.end - a.end);
  const nested: Piece[] = [];
  const stack: Piece[] = [];
  for (const p of merged) {
    while (stack.length > 0 && (stack[stack.length - 1] as Piece).end <= p.start) stack.pop();
    const top = stack[stack.length - 1];
    if (top !== undefined && p.end > top.end) continue;
    if (stack.some((s) => s.monospace || s.ch === p.ch)) continue;
    nested.push({ ...p, depth: stack.length });
    stack.push(p);
  }
  return withValidOpenings(text, seg, nested, suffixes);
}

/** Same-style spans that overlap or touch become one (`*a**b*` would not parse back). */
function mergeSameStyle(pieces: readonly Piece[]): Piece[] {
  const out: Piece[] = [];
  for (const ch of Object.values(DIRECTIVE)) {
    const same = pieces.filter((p) => p.ch === ch).sort((a, b) => a.start - b.start);
    let current: Piece | undefined;
    for (const p of same) {
      if (current !== undefined && p.start <= current.end) {
        current = { ...current, end: Math.max(current.end, p.end) };
      } else {
        if (current !== undefined) out.push(current);
        current = { ...p };
      }
    }
    if (current !== undefined) out.push(current);
  }
  return out;
}

function containsDirective(text: string, p: Piece, suffixes: ReadonlyMap<number, string>): boolean {
  if (text.slice(p.start, p.end).includes(p.ch)) return true;
  for (const [pos, suffix] of suffixes) {
    if (pos > p.start && pos < p.end && suffix.includes(p.ch)) return true;
  }
  return false;
}

/**
 * Drops pieces whose opening directive would not be read as one: it must follow the line start or
 * whitespace (an enclosing opening at the same place counts too), not a closing directive or a
 * link suffix. Decided left to right, since a dropped piece also drops its closing directive.
 */
function withValidOpenings(
  text: string,
  seg: Segment,
  pieces: readonly Piece[],
  suffixes: ReadonlyMap<number, string>,
): Piece[] {
  const byStart = groupBy(pieces, (p) => p.start);
  const byEnd = groupBy(pieces, (p) => p.end);
  const dropped = new Set<Piece>();
  for (const pos of [...byStart.keys()].sort((a, b) => a - b)) {
    const closing = (byEnd.get(pos) ?? []).some((p) => !dropped.has(p));
    const ok = (pos === seg.start || isWs(text[pos - 1])) && !closing && !suffixes.has(pos);
    if (!ok) for (const p of byStart.get(pos) ?? []) dropped.add(p);
  }
  return pieces.filter((p) => !dropped.has(p));
}

function groupBy<T>(items: readonly T[], key: (item: T) => number): Map<number, T[]> {
  const map = new Map<number, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = map.get(k);
    if (list === undefined) map.set(k, [item]);
    else list.push(item);
  }
  return map;
}

function renderSegment(
  text: string,
  seg: Segment,
  pieces: readonly Piece[],
  suffixes: ReadonlyMap<number, string>,
): string {
  const byStart = groupBy(pieces, (p) => p.start);
  const byEnd = groupBy(pieces, (p) => p.end);
  let out = "";
  for (let pos = seg.start; pos <= seg.end; pos++) {
    const closing = [...(byEnd.get(pos) ?? [])].sort((a, b) => b.depth - a.depth);
    for (const p of closing) out += p.ch;
    // After a mid-line cut, a suffix at the segment's start was written before the cut.
    if (pos > seg.start || pos === 0 || text[pos - 1] === "\n") out += suffixes.get(pos) ?? "";
    const opening = [...(byStart.get(pos) ?? [])].sort((a, b) => a.depth - b.depth);
    for (const p of opening) out += p.ch;
    if (pos < seg.end) out += text[pos];
  }
  return out;
}
