import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Socket } from "node:net";
import { StringDecoder } from "node:string_decoder";
import { xml, type XmlElement } from "../../src/interop/codec/xml.js";
import type { Logger } from "../../src/util/log.js";
import { createStreamParser, type StreamParser } from "./stream-parser.js";

export const NS_COMPONENT = "jabber:component:accept";
export const NS_STREAM = "http://etherx.jabber.org/streams";
export const NS_STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams";

/** What a session needs from the server that owns it. */
export interface SessionHost {
  /** The secret of a configured component domain, or undefined if the domain is unknown. */
  secretFor(domain: string): string | undefined;
  /** Claims the domain for this session; false if another component holds it. */
  register(domain: string, session: ComponentSession): boolean;
  unregister(domain: string, session: ComponentSession): void;
  /** Routes a stanza the authenticated session sent. */
  route(stanza: XmlElement, from: ComponentSession): void;
}

type Phase = "header" | "handshake" | "ready" | "closed";

/**
 * The server side of one XEP-0114 connection: stream header, `<handshake>` check, stanza size
 * limit and stream errors, after the behaviour of Prosody's mod_component.
 */
export class ComponentSession {
  readonly streamId = randomBytes(12).toString("hex");
  private phase: Phase = "header";
  private domain: string | undefined;
  private readonly parser: StreamParser = createStreamParser();
  private readonly decoder = new StringDecoder("utf8");
  /** Bytes received since the last complete top-level element (see `onData`). */
  private pendingBytes = 0;
  private sawElement = false;
  private readonly handshakeTimer: NodeJS.Timeout;

  constructor(
    private readonly socket: Socket,
    private readonly host: SessionHost,
    private readonly maxStanzaBytes: number,
    private readonly log: Logger,
    handshakeTimeoutMs: number,
  ) {
    this.parser.on("start", (el) => this.onHeader(el));
    this.parser.on("element", (el) => this.onElement(el));
    this.parser.on("end", () => this.close());
    this.parser.on("error", (err) => {
      this.log.debug({ err: err.message }, "component stream is not well-formed");
      this.closeWithError("not-well-formed");
    });
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err) => this.log.debug({ err: err.message }, "component socket error"));
    socket.on("close", () => this.onSocketClosed());
    this.handshakeTimer = setTimeout(() => {
      if (this.phase !== "ready") this.closeWithError("connection-timeout");
    }, handshakeTimeoutMs);
  }

  /** The authenticated component domain; undefined before the handshake. */
  get componentDomain(): string | undefined {
    return this.phase === "ready" ? this.domain : undefined;
  }

  /** Writes a stanza to the component. */
  deliver(serialized: string): void {
    if (this.phase === "ready") this.socket.write(serialized);
  }

  /** Ends the stream: `</stream:stream>` with an optional stream error, then the socket. */
  closeWithError(condition: string | undefined, text?: string): void {
    if (this.phase === "closed") return;
    if (this.phase === "header") this.writeHeader(this.domain);
    if (condition !== undefined) {
      this.log.info({ condition, text, domain: this.domain }, "closing component stream");
      const error = xml(
        "stream:error",
        {},
        xml(condition, { xmlns: NS_STREAM_ERRORS }),
        text === undefined ? undefined : xml("text", { xmlns: NS_STREAM_ERRORS }, text),
      );
      this.socket.write(error.toString());
    }
    this.socket.end("</stream:stream>");
    this.shutdown();
  }

  /** Ends the stream without an error (server shutdown, or the peer closed its stream). */
  close(): void {
    this.closeWithError(undefined);
  }

  /** Drops the TCP connection without any closing handshake, like a crashed server. */
  destroy(): void {
    this.socket.destroy();
    this.shutdown();
  }

  private onData(chunk: Buffer): void {
    if (this.phase === "closed") return;
    this.pendingBytes += chunk.length;
    this.sawElement = false;
    this.parser.write(this.decoder.write(chunk));
    if (this.isClosed()) return;
    // Counting is per chunk: after a chunk that completed an element, the bytes of a following
    // partial element are forgotten. Complete elements are also measured exactly in
    // `onElement`, so a stanza can never pass above the limit; only an unfinished one can grow
    // up to one chunk past it before the stream is closed.
    if (this.sawElement) this.pendingBytes = 0;
    if (this.pendingBytes > this.maxStanzaBytes) this.tooLarge(this.pendingBytes);
  }

  private onHeader(header: XmlElement): void {
    if (this.phase !== "header") return;
    const to = typeof header.attrs.to === "string" ? header.attrs.to.toLowerCase() : undefined;
    this.domain = to;
    if (header.name !== "stream:stream" || header.attrs.xmlns !== NS_COMPONENT) {
      this.closeWithError("invalid-namespace");
      return;
    }
    if (to === undefined) {
      this.closeWithError("improper-addressing", "A 'to' attribute is required on stream headers");
      return;
    }
    if (this.host.secretFor(to) === undefined) {
      this.closeWithError("host-unknown", `${to} does not match any configured component`);
      return;
    }
    this.writeHeader(to);
    this.phase = "handshake";
  }

  private onElement(el: XmlElement): void {
    if (this.phase === "closed") return;
    this.sawElement = true;
    const serialized = el.toString();
    const bytes = Buffer.byteLength(serialized, "utf8");
    if (bytes > this.maxStanzaBytes) {
      this.tooLarge(bytes);
      return;
    }
    if (this.phase === "handshake") {
      this.onHandshake(el);
      return;
    }
    if (el.name === "stream:error") {
      this.log.info({ domain: this.domain }, "component sent a stream error");
      this.close();
      return;
    }
    if (el.name !== "message" && el.name !== "iq" && el.name !== "presence") {
      this.closeWithError("unsupported-stanza-type", `<${el.name}> is not a stanza`);
      return;
    }
    el.parent = null;
    this.host.route(el, this);
  }

  private onHandshake(el: XmlElement): void {
    const domain = this.domain ?? "";
    const secret = this.host.secretFor(domain);
    if (el.name !== "handshake" || secret === undefined) {
      this.closeWithError("not-authorized");
      return;
    }
    const expected = Buffer.from(
      createHash("sha1")
        .update(this.streamId + secret, "utf8")
        .digest("hex"),
    );
    const given = Buffer.from(el.getText().trim().toLowerCase());
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      this.log.info({ domain }, "component handshake failed");
      this.closeWithError("not-authorized", "Given token does not match calculated token");
      return;
    }
    if (!this.host.register(domain, this)) {
      this.closeWithError("conflict", "Component already connected");
      return;
    }
    clearTimeout(this.handshakeTimer);
    this.phase = "ready";
    this.socket.write(xml("handshake").toString());
    this.log.info({ domain }, "component authenticated");
  }

  private tooLarge(bytes: number): void {
    this.log.info({ domain: this.domain, bytes, max: this.maxStanzaBytes }, "stanza too large");
    this.closeWithError("policy-violation", `stanza of ${bytes} bytes is above the size limit`);
  }

  private writeHeader(domain: string | undefined): void {
    const header = xml("stream:stream", {
      "xmlns:stream": NS_STREAM,
      xmlns: NS_COMPONENT,
      from: domain,
      id: this.streamId,
    });
    // A stream header is an open tag that stays open for the stream's life: serialize the
    // element and reopen its self-closing end, as xmpp.js does for its own header.
    this.socket.write(`<?xml version='1.0'?>${header.toString().slice(0, -2)}>`);
  }

  private isClosed(): boolean {
    return this.phase === "closed";
  }

  private onSocketClosed(): void {
    this.shutdown();
  }

  private shutdown(): void {
    if (this.phase === "closed") return;
    const wasReady = this.phase === "ready";
    this.phase = "closed";
    clearTimeout(this.handshakeTimer);
    this.parser.removeAllListeners();
    this.parser.on("error", () => undefined);
    if (wasReady && this.domain !== undefined) this.host.unregister(this.domain, this);
  }
}
