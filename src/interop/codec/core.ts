import { FEATURE, NS } from "./namespaces.js";
import { parseInteger } from "./primitives.js";
import {
  childrenNamed,
  expect,
  fail,
  optionalAttr,
  optionalChild,
  requiredAttr,
  requiredParsedAttr,
  textOf,
  pathOf,
} from "./read.js";
import { xml, type XmlElement } from "./xml.js";
import { CodecError } from "./codec-error.js";
import { DEFAULT_LIMITS, type Limits } from "./limits.js";

export { DEFAULT_LIMITS, type Limits } from "./limits.js";

/** `hello` request (§8.3). `features` lists optional feature vars, unknown ones included. */
export interface HelloRequest {
  version: string;
  provider: string;
  features: string[];
}

interface HelloResult {
  version: string;
  session: string | undefined;
  features: string[];
  /** The limits as listed; `effectiveLimits` adds the defaults of §8.3 for unlisted ones. */
  announcedLimits: Record<string, number>;
  mediaOrigins: string[];
}

const VERSION = /^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$/;
const PROVIDER_ID = /^[a-z0-9-]{1,64}$/;

export const majorOf = (version: string): number => Number(version.split(".")[0]);

function parseVersion(el: XmlElement): string {
  const version = requiredAttr(el, "version");
  if (!VERSION.test(version)) fail(el, `invalid version ${JSON.stringify(version)}`, "version");
  return version;
}

function encodeFeatures(features: readonly string[]): XmlElement[] {
  return features.map((v) => xml("feature", { var: v }));
}

function decodeFeatures(el: XmlElement): string[] {
  return childrenNamed(el, "feature", NS.core).map((f) => requiredAttr(f, "var"));
}

export function encodeHelloRequest(hello: HelloRequest): XmlElement {
  return xml(
    "hello",
    { xmlns: NS.core, version: hello.version, provider: hello.provider },
    encodeFeatures(hello.features),
  );
}

export function decodeHelloRequest(el: XmlElement): HelloRequest {
  expect(el, "hello", NS.core);
  const provider = requiredAttr(el, "provider");
  if (!PROVIDER_ID.test(provider)) fail(el, "invalid provider id", "provider");
  return { version: parseVersion(el), provider, features: decodeFeatures(el) };
}

export function encodeHelloResult(hello: HelloResult): XmlElement {
  const limits = Object.entries(hello.announcedLimits);
  return xml(
    "hello",
    { xmlns: NS.core, version: hello.version, session: hello.session },
    encodeFeatures(hello.features),
    limits.length === 0
      ? undefined
      : xml(
          "limits",
          {},
          limits.map(([name, value]) => xml("limit", { name, value })),
        ),
    hello.mediaOrigins.map((origin) => xml("media-origin", {}, origin)),
  );
}

export function decodeHelloResult(el: XmlElement): HelloResult {
  expect(el, "hello", NS.core);
  const announcedLimits: Record<string, number> = {};
  const limitsEl = optionalChild(el, "limits", NS.core);
  for (const limit of limitsEl === undefined ? [] : childrenNamed(limitsEl, "limit", NS.core)) {
    const name = requiredAttr(limit, "name");
    if (Object.hasOwn(announcedLimits, name)) fail(limit, `limit ${name} listed twice`, "name");
    announcedLimits[name] = requiredParsedAttr(limit, "value", parseInteger);
  }
  const mediaOrigins = childrenNamed(el, "media-origin", NS.core).map((o) => parseOrigin(o));
  if (mediaOrigins.length === 0) fail(el, "missing <media-origin>");
  return {
    version: parseVersion(el),
    session: optionalAttr(el, "session"),
    features: decodeFeatures(el),
    announcedLimits,
    mediaOrigins,
  };
}

/** `scheme://host[:port]` exactly as WHATWG serializes an origin (§8.3, §14.4). */
function parseOrigin(el: XmlElement): string {
  const text = textOf(el).trim();
  let origin: string | undefined;
  try {
    origin = new URL(text).origin;
  } catch {
    origin = undefined;
  }
  if (origin !== text || !/^https?:\/\//.test(text)) {
    throw new CodecError(`invalid media origin ${JSON.stringify(text.slice(0, 100))}`, {
      path: `${pathOf(el)}/text()`,
    });
  }
  return text;
}

/** Limits in effect after a hello: announced values over the defaults of §8.3. */
export function effectiveLimits(hello: Pick<HelloResult, "announcedLimits">): Limits {
  const limits: Limits = { ...DEFAULT_LIMITS };
  for (const name of Object.keys(limits) as (keyof Limits)[]) {
    const announced = hello.announcedLimits[name];
    if (announced !== undefined) limits[name] = announced;
  }
  return limits;
}

/**
 * §8.3 size consistency: a maximum-size envelope encrypted for every device of one user fits one
 * stanza. A gatekeeper must announce limits that satisfy it; a provider may refuse ones that do not.
 */
export function limitsAreConsistent(limits: Limits): boolean {
  const perKey = 4 * Math.ceil((limits["max-envelope-bytes"] + 4096) / 3);
  return limits["max-devices-per-user"] * perKey + 4096 <= limits["max-stanza-bytes"];
}

/** Features in effect: the intersection of both lists (§8.3). */
export function negotiatedFeatures(
  ours: readonly string[],
  theirs: readonly string[],
): Set<string> {
  const mine = new Set(ours);
  return new Set(theirs.filter((f) => mine.has(f)));
}

// --- hello-request (§8.2) and ping (§8.2, XEP-0199) ---------------------------------------------

export const encodeHelloRequestNotice = (): XmlElement => xml("hello-request", { xmlns: NS.core });

export function decodeHelloRequestNotice(el: XmlElement): true {
  expect(el, "hello-request", NS.core);
  return true;
}

export const encodePing = (): XmlElement => xml("ping", { xmlns: NS.ping });

export function decodePing(el: XmlElement): true {
  expect(el, "ping", NS.ping);
  return true;
}

export { FEATURE };
