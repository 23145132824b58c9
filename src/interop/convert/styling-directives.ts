import type { TextSpan } from "../../core/network.js";

/**
 * The one table of §13.1 inline directives, read by the parser (body -> spans) and the renderer
 * (spans -> body), so that the two directions cannot disagree on a marker.
 */
const INLINE_DIRECTIVES = [
  { style: "bold", ch: "*" },
  { style: "italic", ch: "_" },
  { style: "strikethrough", ch: "~" },
  { style: "monospace", ch: "`" },
] as const satisfies readonly { style: TextSpan["style"]; ch: string }[];

/** A code block's fence line, and WhatsApp's ```monospace``` within a line. */
export const FENCE = "```";
/** The prefix of each line of a quote (§13.1: exactly `> `). */
export const QUOTE_PREFIX = "> ";

/** Directive character -> style, for the parser. */
export const STYLE_OF: Readonly<Record<string, TextSpan["style"]>> = Object.fromEntries(
  INLINE_DIRECTIVES.map((d) => [d.ch, d.style]),
);
/** Style -> directive character, for the renderer. */
export const DIRECTIVE_OF: Readonly<Partial<Record<TextSpan["style"], string>>> =
  Object.fromEntries(INLINE_DIRECTIVES.map((d) => [d.style, d.ch]));
