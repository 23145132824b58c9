import { isPhoneNumber } from "../../util/ids.js";
import { formatInternational } from "../../util/phone.js";

/**
 * Just enough vCard (3.0 and 4.0, RFC 6350) reading to show a shared contact as text: the
 * formatted name, telephone numbers and e-mail addresses. Unknown properties are skipped; the
 * card is never rewritten or re-sent, so nothing here needs to be lossless.
 */
interface ContactSummary {
  name?: string;
  organization?: string;
  phones: string[];
  emails: string[];
}

/** Per card: enough for any real contact, small enough that a hostile card stays short. */
const MAX_VALUES = 10;
const MAX_VALUE_LENGTH = 256;

const LINE = /^(?:[A-Za-z0-9-]+\.)?([A-Za-z0-9-]+)(?:;[^:]*)?:(.*)$/;

function unescapeValue(v: string): string {
  return v.replace(/\\([\\;,nN])/g, (_m, c: string) => (c === "n" || c === "N" ? " " : c));
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/g;

function clean(v: string): string {
  return v.replace(CONTROL, " ").trim().slice(0, MAX_VALUE_LENGTH);
}

/** International numbers read as `+49 170 1234567`; anything else is shown as written. */
function displayPhone(raw: string): string {
  const value = raw.replace(/^tel:/i, "");
  const compact = value.replace(/[\s().-]/g, "");
  return isPhoneNumber(compact) ? formatInternational(compact) : value;
}

export function summarizeVcard(vcard: string): ContactSummary {
  let name: string | undefined;
  let structuredName: string | undefined;
  let organization: string | undefined;
  const phones: string[] = [];
  const emails: string[] = [];
  const unfolded = vcard.replace(/\r?\n[ \t]/g, "");
  for (const line of unfolded.split(/\r?\n/)) {
    const match = LINE.exec(line);
    if (match === null) continue;
    const property = (match[1] ?? "").toUpperCase();
    const raw = match[2] ?? "";
    if (property === "FN") {
      name ||= clean(unescapeValue(raw));
    } else if (property === "N") {
      // N is family;given;additional;prefixes;suffixes.
      const [family = "", given = ""] = raw.split(/(?<!\\);/).map(unescapeValue);
      structuredName ||= clean(`${given} ${family}`);
    } else if (property === "ORG") {
      organization ||= clean(unescapeValue(raw.split(/(?<!\\);/)[0] ?? ""));
    } else if (property === "TEL" && phones.length < MAX_VALUES) {
      const phone = clean(displayPhone(unescapeValue(raw)));
      if (phone !== "") phones.push(phone);
    } else if (property === "EMAIL" && emails.length < MAX_VALUES) {
      const email = clean(unescapeValue(raw));
      if (email !== "") emails.push(email);
    }
  }
  const summary: ContactSummary = { phones, emails };
  if (name || structuredName) summary.name = name || structuredName;
  if (organization) summary.organization = organization;
  return summary;
}
