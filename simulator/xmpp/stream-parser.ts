import { createRequire } from "node:module";
import type { XmlElement } from "../../src/interop/codec/xml.js";

/**
 * The incremental XML stream parser of @xmpp/xml (ltx), typed locally because the package ships
 * no declarations. `start` gives the stream header, `element` each top-level child (stanza or
 * nonza, with `parent` set to the header element), `end` the closing `</stream:stream>`.
 */
export interface StreamParser {
  on(event: "start" | "element" | "end", listener: (el: XmlElement) => void): this;
  on(event: "error", listener: (err: Error) => void): this;
  write(data: string): void;
  removeAllListeners(): this;
}

const require = createRequire(import.meta.url);
const { Parser } = require("@xmpp/xml") as { Parser: new () => StreamParser };

export function createStreamParser(): StreamParser {
  return new Parser();
}
