import { createRequire } from "node:module";

/**
 * Typed access to @xmpp/xml (ltx), which ships no type declarations. Declaring the shape here,
 * instead of an ambient `declare module`, keeps the codec's typing local and cannot collide with a
 * declaration another part of the project may add for the same package.
 */
export interface XmlElement {
  name: string;
  attrs: Record<string, unknown>;
  children: XmlNode[];
  parent: XmlElement | null;
  getName(): string;
  getNS(): string | undefined;
  getText(): string;
  toString(): string;
}

/** A child node as ltx holds it: an element or a text string. */
export type XmlNode = XmlElement | string;

/** Attribute values accepted by the builder; `undefined` omits the attribute. */
type XmlAttrs = Record<string, string | number | undefined>;
export type XmlChild = XmlElement | string | undefined | null | false | readonly XmlChild[];

interface XmppXmlModule {
  (
    name: string,
    attrs?: Record<string, string | number> | null,
    ...children: unknown[]
  ): XmlElement;
  Parser: new () => XmlParser;
}

interface XmlParser {
  on(event: "start" | "element", listener: (el: XmlElement) => void): void;
  on(event: "error", listener: (err: Error) => void): void;
  write(data: string): void;
  end(data?: string): void;
}

const require = createRequire(import.meta.url);
const xmppXml = require("@xmpp/xml") as XmppXmlModule;

/** Builds an element. Attributes whose value is `undefined` are left out. */
export function xml(name: string, attrs: XmlAttrs = {}, ...children: XmlChild[]): XmlElement {
  const clean: Record<string, string> = {};
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined) clean[key] = String(value);
  }
  return xmppXml(name, clean, ...flatten(children));
}

function flatten(children: readonly XmlChild[]): XmlNode[] {
  const out: XmlNode[] = [];
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) out.push(...flatten(child as readonly XmlChild[]));
    else out.push(child as XmlNode);
  }
  return out;
}

/**
 * Parses one XML document into an element tree with ltx, as the component connection does.
 * For stanza fixtures and the simulator only: ltx silently skips DTDs, comments and processing
 * instructions, so attacker-controlled plaintext (envelopes) goes through `envelope-parser.ts`.
 */
export function parseXml(text: string): XmlElement {
  const parser = new xmppXml.Parser();
  let root: XmlElement | undefined;
  let failure: Error | undefined;
  parser.on("start", (el) => {
    root = el;
  });
  parser.on("element", (el) => {
    if (root === undefined) return;
    root.children.push(el);
    el.parent = root;
  });
  parser.on("error", (err) => {
    failure ??= err;
  });
  parser.write(text);
  parser.end();
  if (failure !== undefined) throw failure;
  if (root === undefined) throw new Error("no root element in XML text");
  return root;
}

export function isElement(node: unknown): node is XmlElement {
  return (
    typeof node === "object" &&
    node !== null &&
    typeof (node as { name?: unknown }).name === "string" &&
    typeof (node as { getName?: unknown }).getName === "function"
  );
}

/**
 * A stanza held as the exact text to write, for the outbox: the stored bytes go to the socket
 * unchanged on the first transmission and on every retransmission (§15.3), with no parse and no
 * serialisation on the way (issue #15: the outbox parsed its text again before each send, and
 * the connection serialised the tree once more, two parses and three serialisations per message).
 * `name` and `to` are known without parsing; the tree is parsed only when something reads it
 * (a test's capture of what was sent). Its attributes must not be changed: the text is what goes
 * out.
 */
export class SerializedStanza implements XmlElement {
  private tree: XmlElement | undefined;

  constructor(
    readonly text: string,
    readonly name: string,
    /** The stanza's `to`, as stored beside it. */
    readonly to: string,
  ) {}

  private get parsed(): XmlElement {
    this.tree ??= parseXml(this.text);
    return this.tree;
  }

  get attrs(): Record<string, unknown> {
    return this.parsed.attrs;
  }

  get children(): XmlNode[] {
    return this.parsed.children;
  }

  get parent(): XmlElement | null {
    return null;
  }

  getName(): string {
    return this.name;
  }

  getNS(): string | undefined {
    return this.parsed.getNS();
  }

  getText(): string {
    return this.parsed.getText();
  }

  toString(): string {
    return this.text;
  }

  /**
   * The stored text as a stanza to send, or undefined when its root tag has no `from` (the
   * connection sets a missing `from` on the element, so such a text is parsed and sent as a tree).
   * ltx escapes `>` inside attribute values, so the first `>` ends the root tag.
   */
  static of(text: string, to: string): SerializedStanza | undefined {
    const open = text.slice(0, text.indexOf(">"));
    if (!open.startsWith("<") || !/\sfrom=["']/.test(open)) return undefined;
    const name = /^<([^\s/>]+)/.exec(open)?.[1];
    return name === undefined ? undefined : new SerializedStanza(text, name, to);
  }
}

/** A stanza's `to`, without parsing a `SerializedStanza`. */
export function stanzaTo(stanza: XmlElement): string {
  return stanza instanceof SerializedStanza ? stanza.to : String(stanza.attrs.to ?? "");
}
