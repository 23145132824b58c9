import type { NeutralText, TextSpan } from "../../core/network.js";
import { dropCharacters } from "../../util/text-remap.js";

/**
 * The text a formatted rendering shows: the network's own styling markers that spans declare
 * (`TextSpan.markers`: WhatsApp's `*`, `_`, fences and `> ` prefixes, which §13.1 keeps in the
 * plain body) removed, and every span remapped onto what is left. Spans that cover only markers
 * disappear. Text without declared markers comes back unchanged (the same object).
 */
export function stripMarkers(input: NeutralText): NeutralText {
  const { text } = input;
  if (!input.spans.some((s) => s.markers !== undefined)) return input;
  const hidden = new Uint8Array(text.length);
  for (const span of input.spans) markSpan(text, span, hidden);
  const { kept, position } = dropCharacters(text, hidden);
  const spans: TextSpan[] = [];
  for (const s of input.spans) {
    const start = position[clamp(s.start, text.length)] as number;
    const end = position[clamp(s.end, text.length)] as number;
    if (end <= start) continue;
    spans.push(
      s.url === undefined
        ? { start, end, style: s.style }
        : { start, end, style: s.style, url: s.url },
    );
  }
  return { text: kept, spans };
}

function markSpan(text: string, span: TextSpan, hidden: Uint8Array): void {
  const m = span.markers;
  if (m === undefined) return;
  const start = clamp(span.start, text.length);
  const end = clamp(span.end, text.length);
  const open = clamp(m.open, end - start);
  if (span.style !== "quote") {
    hidden.fill(1, start, start + open);
    hidden.fill(1, Math.max(start + open, end - clamp(m.close, end - start)), end);
    return;
  }
  // A quote's prefix opens each of its lines, at the column where the span starts (a nested
  // quote's lines begin after the prefixes of the quotes around it).
  const lineStart = text.lastIndexOf("\n", start - 1) + 1;
  const column = start - lineStart;
  for (let line = lineStart; line < end;) {
    const from = line + column;
    if (from >= start && from < end) hidden.fill(1, from, Math.min(from + open, end));
    const nl = text.indexOf("\n", line);
    if (nl < 0) break;
    line = nl + 1;
  }
}

const clamp = (n: number, max: number): number =>
  Number.isInteger(n) ? Math.min(Math.max(n, 0), max) : 0;
