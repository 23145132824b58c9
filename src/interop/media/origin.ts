import { MediaUrlError } from "./errors.js";

/** Which URLs media may be moved to and from: the `media-origin` list of the latest hello (§8.3). */
interface MediaUrlPolicy {
  /** Announced origins, `scheme://host[:port]`, compared exactly (§14.4). */
  readonly origins: readonly string[];
  /** Permit `http` to loopback IP literals; for test deployments only (§14.2). */
  readonly allowInsecureLoopback?: boolean;
}

/** An upload slot as received in `<slot>` (§14.1); parsing the IQ is the codec's job. */
export interface UploadSlot {
  readonly putUrl: string;
  readonly headers: readonly SlotHeader[];
  readonly getUrl: string;
  readonly expires?: Date;
}

interface SlotHeader {
  readonly name: string;
  readonly value: string;
}

/** §14.1: the only header names a slot may ask for. */
const SLOT_HEADER_NAMES = new Set(["authorization", "cookie", "expires"]);

/**
 * Returns the parsed URL if it may be used for media under `policy`, else throws MediaUrlError.
 * The origin is WHATWG's serialization (`URL.origin`: lower-case host, default port omitted), and
 * an announced origin that is not itself in that form can never match, by design of §14.4.
 */
export function checkMediaUrl(raw: string, policy: MediaUrlPolicy): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    // The URL is a capability (§14.2), so it is not repeated in the message.
    throw new MediaUrlError(
      "malformed",
      `media URL is not a valid URL (${raw.length} characters)`,
      { cause: err },
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new MediaUrlError("scheme", `media URL scheme ${url.protocol} is not https`);
  }
  // An empty userinfo (`https://@host/`) vanishes in parsing, so the raw authority is checked too.
  if (url.username !== "" || url.password !== "" || rawAuthority(raw).includes("@")) {
    throw new MediaUrlError("userinfo", `media URL for ${url.origin} carries userinfo`);
  }
  if (
    url.protocol === "http:" &&
    !(policy.allowInsecureLoopback === true && isLoopbackHost(url.hostname))
  ) {
    throw new MediaUrlError("insecure", `plain http refused for media URL at ${url.origin}`);
  }
  if (!policy.origins.includes(url.origin)) {
    throw new MediaUrlError(
      "origin",
      `media origin ${url.origin} is not an announced media-origin`,
    );
  }
  return url;
}

/** Checks both URLs and the header list of a slot (§14.1) before anything is sent. */
export function checkUploadSlot(slot: UploadSlot, policy: MediaUrlPolicy): { put: URL; get: URL } {
  const put = checkMediaUrl(slot.putUrl, policy);
  const get = checkMediaUrl(slot.getUrl, policy);
  const seen = new Set<string>();
  for (const { name, value } of slot.headers) {
    const lower = name.toLowerCase();
    if (!SLOT_HEADER_NAMES.has(lower)) {
      throw new MediaUrlError(
        "header",
        `upload slot asks for header ${JSON.stringify(name)}, not allowed by §14.1`,
      );
    }
    if (seen.has(lower)) throw new MediaUrlError("header", `upload slot repeats header ${name}`);
    seen.add(lower);
    if (/[\r\n\0]/.test(value))
      throw new MediaUrlError("header", `upload slot header ${name} has a control character`);
  }
  return { put, get };
}

/** Loopback IP literals only: a name such as `localhost` depends on resolver configuration. */
function isLoopbackHost(hostname: string): boolean {
  if (hostname === "[::1]") return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

function rawAuthority(raw: string): string {
  // The URL parser ignores surrounding C0 controls and spaces and every tab or newline.
  const cleaned = Array.from(raw)
    .filter((ch) => ch.charCodeAt(0) > 0x20)
    .join("");
  const match = /^[A-Za-z][A-Za-z0-9+.-]*:[/\\]*([^/\\?#]*)/.exec(cleaned);
  return match?.[1] ?? "";
}
