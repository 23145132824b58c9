import type { TextSpan } from "../../core/network.js";
import { safeLinkUrl } from "./links.js";

const STYLE_ORDER: readonly TextSpan["style"][] = [
  "quote",
  "code-block",
  "link",
  "bold",
  "italic",
  "strikethrough",
  "monospace",
];

/** Outer before inner: earlier start first, then longer, then block styles before inline ones. */
function compareSpans(a: TextSpan, b: TextSpan): number {
  return (
    a.start - b.start ||
    b.end - a.end ||
    STYLE_ORDER.indexOf(a.style) - STYLE_ORDER.indexOf(b.style) ||
    (a.url ?? "").localeCompare(b.url ?? "")
  );
}

/**
 * Spans as both directions rely on them: integer offsets clamped to the text, no empty spans,
 * links only with a permitted URL, and spans of one style (and URL) that touch or overlap merged.
 * Spans from the network side pass through here too, so nothing assumes they were well formed.
 */
export function normalizeSpans(text: string, spans: readonly TextSpan[]): TextSpan[] {
  const valid: TextSpan[] = [];
  for (const span of spans) {
    if (!STYLE_ORDER.includes(span.style)) continue;
    if (!Number.isInteger(span.start) || !Number.isInteger(span.end)) continue;
    const start = Math.max(0, span.start);
    const end = Math.min(text.length, span.end);
    if (end <= start) continue;
    if (span.style === "link") {
      const url = span.url === undefined ? undefined : safeLinkUrl(span.url);
      if (url !== undefined) valid.push({ start, end, style: "link", url });
    } else {
      valid.push({ start, end, style: span.style });
    }
  }
  valid.sort(
    (a, b) =>
      a.style.localeCompare(b.style) ||
      (a.url ?? "").localeCompare(b.url ?? "") ||
      a.start - b.start,
  );
  const merged: TextSpan[] = [];
  for (const span of valid) {
    const last = merged[merged.length - 1];
    if (
      last !== undefined &&
      last.style === span.style &&
      last.url === span.url &&
      span.start <= last.end
    ) {
      last.end = Math.max(last.end, span.end);
    } else {
      merged.push({ ...span });
    }
  }
  return merged.sort(compareSpans);
}
