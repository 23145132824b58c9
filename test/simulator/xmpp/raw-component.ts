import { createHash } from "node:crypto";
import { connect, type Socket } from "node:net";
import type { XmlElement } from "../../../src/interop/codec/xml.js";
import { createStreamParser } from "../../../simulator/xmpp/stream-parser.js";

/**
 * A hand-driven XEP-0114 client for testing servers byte by byte: it writes exactly what the
 * test gives it and records everything the server sends back.
 */
export class RawComponent {
  readonly received: XmlElement[] = [];
  streamId: string | undefined;
  streamClosed = false;
  readonly closed: Promise<void>;
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly socket: Socket) {
    const parser = createStreamParser();
    parser.on("start", (header) => {
      this.streamId = typeof header.attrs.id === "string" ? header.attrs.id : undefined;
      this.wake();
    });
    parser.on("element", (el) => {
      this.received.push(el);
      this.wake();
    });
    parser.on("end", () => {
      this.streamClosed = true;
      this.wake();
    });
    parser.on("error", () => undefined);
    socket.setEncoding("utf8");
    socket.on("data", (data: string) => parser.write(data));
    socket.on("error", () => undefined);
    this.closed = new Promise((resolve) => socket.on("close", () => resolve()));
    void this.closed.then(() => this.wake());
  }

  static async open(port: number, domain: string): Promise<RawComponent> {
    const socket = connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const client = new RawComponent(socket);
    client.write(
      `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' ` +
        `xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`,
    );
    return client;
  }

  /** Opens a stream and completes the handshake with `secret`; resolves on `<handshake/>`. */
  static async authenticated(port: number, domain: string, secret: string): Promise<RawComponent> {
    const client = await RawComponent.open(port, domain);
    await client.handshake(secret);
    const answer = await client.next();
    if (answer.name !== "handshake") throw new Error(`handshake refused: ${answer.toString()}`);
    return client;
  }

  async handshake(secret: string): Promise<void> {
    await this.until(() => this.streamId !== undefined || this.streamClosed);
    const digest = createHash("sha1")
      .update((this.streamId ?? "") + secret)
      .digest("hex");
    this.write(`<handshake>${digest}</handshake>`);
  }

  write(text: string): void {
    this.socket.write(text);
  }

  /** The next element received (in order), waiting for it if needed. */
  private cursor = 0;
  async next(timeoutMs = 5000): Promise<XmlElement> {
    await this.until(() => this.received.length > this.cursor, timeoutMs);
    const el = this.received[this.cursor];
    this.cursor += 1;
    if (el === undefined) throw new Error("no element");
    return el;
  }

  /** Whether another element arrives within `ms` (for asserting that nothing comes). */
  async nothingWithin(ms: number): Promise<boolean> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return this.received.length === this.cursor;
  }

  isClosed(): boolean {
    return this.socket.destroyed || this.socket.readableEnded;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private async until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (this.isClosed()) throw new Error("connection closed while waiting");
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, remaining);
        const waiter = (): void => done();
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.waiters.add(waiter);
      });
    }
  }

  private wake(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) w();
  }
}
