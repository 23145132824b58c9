import type { MessageContent } from "../../core/network.js";
import { firstLine, truncateChars } from "./text.js";

/**
 * Plain-text stand-ins: what a conversation shows instead of an element that the other side
 * cannot receive (§7.6) or that this bridge does not implement (§13.10), and `<fallback>` texts
 * for groups (§13.13).
 */

type Location = Extract<MessageContent, { type: "location" }>;
type Call = Extract<MessageContent, { type: "call" }>;

const QUOTE_PREVIEW_CHARS = 100;

/** A reply without `#reply`: the quoted message's first line as a §13.1 quote line, then the text. */
export function quotedReplyText(quote: string, text: string): string {
  const line = truncateChars(firstLine(quote), QUOTE_PREVIEW_CHARS);
  if (line === "") return text;
  return text === "" ? `> ${line}` : `> ${line}\n${text}`;
}

const coordinate = (v: number): string => String(Math.round(v * 1e7) / 1e7);

/** A location without `#location`: its name and address, then an OpenStreetMap link. */
export function locationText(l: Location): string {
  const lat = coordinate(l.lat);
  const lon = coordinate(l.lon);
  const label = [l.name, l.address].filter((s) => s !== undefined && s.trim() !== "").join(", ");
  const link = `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=16/${lat}/${lon}`;
  return `📍 ${label === "" ? `${lat}, ${lon}` : label}\n${link}`;
}

interface VCardSummary {
  name: string | undefined;
  phones: string[];
}

/**
 * The display name and phone numbers of a vCard 3.0/4.0 (RFC 6350): unfolds continuation lines,
 * reads FN (else N) and every TEL, unescapes values. Anything else is ignored; never throws.
 */
function summarizeVCard(vcard: string): VCardSummary {
  const lines = vcard.replace(/\r?\n[ \t]/g, "").split(/\r?\n/);
  let fn: string | undefined;
  let n: string | undefined;
  const phones: string[] = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = (line.slice(0, colon).split(";")[0] ?? "").replace(/^[^.]*\./, "").toUpperCase();
    const value = line.slice(colon + 1);
    if (name === "FN" && fn === undefined) fn = unescapeValue(value).trim();
    else if (name === "N" && n === undefined) n = structuredName(value);
    else if (name === "TEL") {
      const tel = unescapeValue(value).replace(/^tel:/i, "").trim();
      if (tel !== "") phones.push(tel);
    }
  }
  const name = fn !== undefined && fn !== "" ? fn : n !== undefined && n !== "" ? n : undefined;
  return { name, phones };
}

function structuredName(value: string): string {
  const [family = "", given = "", additional = "", prefix = "", suffix = ""] = value
    .split(/(?<!\\);/)
    .map((p) => unescapeValue(p).trim());
  return [prefix, given, additional, family, suffix].filter((p) => p !== "").join(" ");
}

const unescapeValue = (v: string): string =>
  v.replace(/\\([nN,;\\])/g, (_, c: string) => (c === "n" || c === "N" ? " " : c));

/** Contact cards without `#contact`: one line per card, its name and numbers. */
export function contactsText(vcards: readonly string[]): string {
  return vcards
    .map((v) => {
      const { name, phones } = summarizeVCard(v);
      const who = name ?? "Contact";
      return phones.length === 0 ? `👤 ${who}` : `👤 ${who}: ${phones.join(", ")}`;
    })
    .join("\n");
}

/** "Missed video call", "Voice call (2:05)". */
export function callText(c: Call): string {
  const what = c.media === "video" ? "video call" : "voice call";
  switch (c.outcome) {
    case "missed":
      return `Missed ${what}`;
    case "declined":
      return `Declined ${what}`;
    case "no-answer":
      return `Unanswered ${what}`;
    case "ended": {
      const capital = what.charAt(0).toUpperCase() + what.slice(1);
      return c.durationSeconds === undefined ? capital : `${capital} (${clock(c.durationSeconds)})`;
    }
  }
}

function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

const TIMER_NAMES: Readonly<Record<number, string>> = {
  86400: "24 hours",
  604800: "7 days",
  7776000: "90 days",
};

/** The notice §13.10 requires from a receiver that does not implement disappearing messages. */
export function disappearingNotice(sender: string, timer: number): string {
  if (timer === 0) return `${sender} turned off disappearing messages`;
  const duration = TIMER_NAMES[timer] ?? `${timer} seconds`;
  return `${sender} set disappearing messages to ${duration}; this app does not support disappearing messages`;
}

/** §13.13 texts for groups, where receivers may not know the element. */
export function reactionFallback(emojis: readonly string[], quote: string | undefined): string {
  const target =
    quote === undefined ? "a message" : `“${truncateChars(firstLine(quote), QUOTE_PREVIEW_CHARS)}”`;
  return emojis.length === 0
    ? `Removed a reaction from ${target}`
    : `Reacted ${emojis.join(" ")} to ${target}`;
}

export const RETRACT_FALLBACK = "This message was deleted";
