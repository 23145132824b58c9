import { CodecError } from "./codec-error.js";

/**
 * A strict, namespace-aware XML parser for decrypted envelopes (§12.2). Envelope plaintext is
 * attacker-controlled, and ltx silently skips DTDs, comments and processing instructions and would
 * have to be trusted with entity handling, so envelopes get this small dedicated parser instead.
 *
 * Refused, as "unparsable": a DTD, any entity reference other than the five predefined ones
 * (character references are fine), comments, processing instructions (the XML declaration
 * included), a byte-order mark, invalid UTF-8 or XML characters, more than `maxDepth` levels of
 * nesting, more than `maxElements` elements, more than `maxBytes` bytes, undeclared prefixes,
 * duplicate attributes, and anything else that is not well-formed.
 */

export interface ParsedNode {
  /** Local name. */
  name: string;
  /** Resolved namespace; undefined for an element in no namespace. */
  ns: string | undefined;
  /** Attributes without a prefix, by local name (namespaced attributes are dropped, §7.3). */
  attrs: Map<string, string>;
  children: (ParsedNode | string)[];
}

interface EnvelopeParseLimits {
  maxBytes: number;
  maxDepth?: number;
  maxElements?: number;
}

const XML_NS = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NS = "http://www.w3.org/2000/xmlns/";
const NAME_START =
  "A-Za-z_\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\u{10000}-\\u{EFFFF}";
const NAME_CHAR = `${NAME_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040`;
/** An NCName or a QName with one colon, anchored at the current position (sticky). */
/* eslint-disable no-misleading-character-class -- NameChar includes combining marks (XML 1.0 §2.3) */
const QNAME = new RegExp(
  `[${NAME_START}][${NAME_CHAR}]*(?::[${NAME_START}][${NAME_CHAR}]*)?`,
  "uy",
);
/* eslint-enable no-misleading-character-class */
const INVALID_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const PREDEFINED: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

export function parseEnvelopeXml(
  input: string | Uint8Array,
  limits: EnvelopeParseLimits,
): ParsedNode {
  const text = decodeInput(input, limits.maxBytes);
  return new EnvelopeParser(text, limits.maxDepth ?? 16, limits.maxElements ?? 1000).parse();
}

function unparsable(message: string, offset?: number): CodecError {
  return new CodecError(`unparsable envelope: ${message}`, {
    path: offset === undefined ? "/envelope" : `/envelope (offset ${offset})`,
  });
}

function decodeInput(input: string | Uint8Array, maxBytes: number): string {
  const size = typeof input === "string" ? Buffer.byteLength(input, "utf8") : input.byteLength;
  if (size > maxBytes) throw unparsable(`${size} bytes exceed max-envelope-bytes ${maxBytes}`);
  let text: string;
  if (typeof input === "string") {
    text = input;
  } else {
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(input);
    } catch (err) {
      throw new CodecError("unparsable envelope: invalid UTF-8", { path: "/envelope", cause: err });
    }
  }
  if (text.startsWith("\uFEFF")) throw unparsable("byte-order mark");
  if (INVALID_CHAR.test(text)) throw unparsable("character not allowed in XML");
  // XML 1.0 §2.11: a literal CR LF or CR is read as LF; CR survives only as a character reference.
  return text.replace(/\r\n?/g, "\n");
}

interface OpenElement {
  qname: string;
  node: ParsedNode;
  scope: Map<string, string>;
}

class EnvelopeParser {
  private pos = 0;
  private elements = 0;

  constructor(
    private readonly s: string,
    private readonly maxDepth: number,
    private readonly maxElements: number,
  ) {}

  parse(): ParsedNode {
    this.skipWhitespace();
    if (this.s[this.pos] !== "<") throw unparsable("no root element", this.pos);
    this.checkMarkup();
    const root = this.element(new Map([["xml", XML_NS]]), 1);
    this.skipWhitespace();
    if (this.pos !== this.s.length) {
      if (this.s[this.pos] === "<") this.checkMarkup();
      throw unparsable("content after the root element", this.pos);
    }
    return root;
  }

  /** At `<`: refuse DTDs, comments and processing instructions before anything else. */
  private checkMarkup(): void {
    const next = this.s[this.pos + 1];
    if (next === "?") throw unparsable("processing instruction", this.pos);
    if (this.s.startsWith("<!--", this.pos)) throw unparsable("comment", this.pos);
    if (this.s.startsWith("<!DOCTYPE", this.pos)) throw unparsable("DTD", this.pos);
    if (next === "!" && !this.s.startsWith("<![CDATA[", this.pos)) {
      throw unparsable("markup declaration", this.pos);
    }
  }

  private element(parentScope: Map<string, string>, depth: number): ParsedNode {
    if (depth > this.maxDepth)
      throw unparsable(`more than ${this.maxDepth} levels of nesting`, this.pos);
    if (++this.elements > this.maxElements) {
      throw unparsable(`more than ${this.maxElements} elements`, this.pos);
    }
    this.pos++; // '<'
    const qname = this.name();
    const rawAttrs = this.attributes();
    const selfClosing = this.s.startsWith("/>", this.pos);
    if (!selfClosing && this.s[this.pos] !== ">") throw unparsable("malformed start tag", this.pos);
    this.pos += selfClosing ? 2 : 1;

    const scope = this.declare(rawAttrs, parentScope);
    const node: ParsedNode = {
      name: localOf(qname),
      ns: this.resolve(qname, scope, true),
      attrs: this.plainAttributes(rawAttrs, scope),
      children: [],
    };
    if (!selfClosing) this.content({ qname, node, scope }, depth);
    return node;
  }

  private content(open: OpenElement, depth: number): void {
    let text = "";
    const flush = (): void => {
      if (text.length > 0) open.node.children.push(text);
      text = "";
    };
    for (;;) {
      const lt = this.s.indexOf("<", this.pos);
      if (lt < 0) throw unparsable(`unclosed <${open.qname}>`, this.pos);
      text += this.charData(this.s.slice(this.pos, lt), this.pos);
      this.pos = lt;
      if (this.s.startsWith("</", this.pos)) {
        this.pos += 2;
        const name = this.name();
        this.skipWhitespace();
        if (name !== open.qname || this.s[this.pos] !== ">") {
          throw unparsable(`</${name}> does not close <${open.qname}>`, this.pos);
        }
        this.pos++;
        flush();
        return;
      }
      this.checkMarkup();
      if (this.s.startsWith("<![CDATA[", this.pos)) {
        const end = this.s.indexOf("]]>", this.pos + 9);
        if (end < 0) throw unparsable("unterminated CDATA section", this.pos);
        text += this.s.slice(this.pos + 9, end);
        this.pos = end + 3;
        continue;
      }
      flush();
      open.node.children.push(this.element(open.scope, depth + 1));
    }
  }

  /** Character data with references replaced; `]]>` and a bare `&` are not well-formed. */
  private charData(raw: string, offset: number): string {
    if (raw.includes("]]>")) throw unparsable("']]>' in character data", offset);
    return this.references(raw, offset);
  }

  private references(raw: string, offset: number): string {
    if (!raw.includes("&")) return raw;
    return raw.replace(/&([^;&]*)(;?)/g, (_match, body: string, semi: string) => {
      if (semi !== ";") throw unparsable("'&' without a reference", offset);
      if (Object.hasOwn(PREDEFINED, body)) return PREDEFINED[body] as string;
      const m = /^#(?:([0-9]{1,7})|x([0-9A-Fa-f]{1,6}))$/.exec(body);
      if (m === null) throw unparsable(`entity reference &${body.slice(0, 20)};`, offset);
      const code = m[1] !== undefined ? Number(m[1]) : parseInt(m[2] as string, 16);
      const ch = code <= 0x10ffff ? String.fromCodePoint(code) : "\uFFFF";
      if (INVALID_CHAR.test(ch) || ch === "\uFFFF") {
        throw unparsable(`character reference &${body};`, offset);
      }
      return ch;
    });
  }

  private attributes(): [string, string][] {
    const attrs: [string, string][] = [];
    const seen = new Set<string>();
    for (;;) {
      const hadSpace = this.skipWhitespace();
      const c = this.s[this.pos];
      if (c === ">" || c === "/" || c === undefined) return attrs;
      if (!hadSpace) throw unparsable("attributes must be separated by whitespace", this.pos);
      const name = this.name();
      if (seen.has(name)) throw unparsable(`duplicate attribute ${name}`, this.pos);
      seen.add(name);
      this.skipWhitespace();
      if (this.s[this.pos] !== "=") throw unparsable(`attribute ${name} without value`, this.pos);
      this.pos++;
      this.skipWhitespace();
      const quote = this.s[this.pos];
      if (quote !== '"' && quote !== "'") throw unparsable("unquoted attribute value", this.pos);
      const end = this.s.indexOf(quote, this.pos + 1);
      if (end < 0) throw unparsable("unterminated attribute value", this.pos);
      const raw = this.s.slice(this.pos + 1, end);
      if (raw.includes("<")) throw unparsable("'<' in attribute value", this.pos);
      // Attribute-value normalisation (XML 1.0 §3.3.3): literal whitespace becomes a space.
      attrs.push([name, this.references(raw.replace(/[\t\n]/g, " "), this.pos)]);
      this.pos = end + 1;
    }
  }

  private declare(attrs: [string, string][], parent: Map<string, string>): Map<string, string> {
    let scope = parent;
    for (const [name, value] of attrs) {
      if (name !== "xmlns" && !name.startsWith("xmlns:")) continue;
      const prefix = name === "xmlns" ? "" : name.slice(6);
      if (prefix === "xmlns" || value === XMLNS_NS) throw unparsable("xmlns prefix rebound");
      if ((prefix === "xml") !== (value === XML_NS)) throw unparsable("xml prefix rebound");
      if (prefix !== "" && value === "") throw unparsable(`empty namespace for prefix ${prefix}`);
      if (scope === parent) scope = new Map(parent);
      scope.set(prefix, value);
    }
    return scope;
  }

  private resolve(
    qname: string,
    scope: Map<string, string>,
    isElement: boolean,
  ): string | undefined {
    const colon = qname.indexOf(":");
    if (colon < 0) {
      const ns = isElement ? scope.get("") : undefined;
      return ns === "" ? undefined : ns;
    }
    const ns = scope.get(qname.slice(0, colon));
    if (ns === undefined) throw unparsable(`undeclared prefix in ${qname}`);
    return ns;
  }

  private plainAttributes(
    attrs: [string, string][],
    scope: Map<string, string>,
  ): Map<string, string> {
    const plain = new Map<string, string>();
    const expanded = new Set<string>();
    for (const [name, value] of attrs) {
      if (name === "xmlns" || name.startsWith("xmlns:")) continue;
      const ns = this.resolve(name, scope, false);
      const key = `{${ns ?? ""}}${localOf(name)}`;
      if (expanded.has(key)) throw unparsable(`duplicate attribute ${key}`);
      expanded.add(key);
      if (ns === undefined) plain.set(name, value);
    }
    return plain;
  }

  private name(): string {
    QNAME.lastIndex = this.pos;
    const m = QNAME.exec(this.s);
    if (m === null) throw unparsable("expected a name", this.pos);
    this.pos += m[0].length;
    return m[0];
  }

  private skipWhitespace(): boolean {
    const start = this.pos;
    while (this.pos < this.s.length && " \t\n".includes(this.s[this.pos] as string)) this.pos++;
    return this.pos > start;
  }
}

function localOf(qname: string): string {
  const colon = qname.indexOf(":");
  return colon < 0 ? qname : qname.slice(colon + 1);
}
