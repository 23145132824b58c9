import { randomBytes } from "node:crypto";
import { ComponentServer, type LocalComponent } from "../../../simulator/xmpp/component-server.js";
import { encodeHelloResult } from "../../../src/interop/codec/core.js";
import { decodeIq, encodeIqError, encodeIqResult } from "../../../src/interop/codec/iq.js";
import { decodeIqRequest } from "../../../src/interop/codec/iq-requests.js";
import {
  encodeBundlesResult,
  encodeDeviceList,
  encodePreKeyCounts,
} from "../../../src/interop/codec/keys.js";
import { classifyMessage, type InboundMessage } from "../../../src/interop/codec/message.js";
import {
  buildAccepted,
  buildBounce,
  buildDelivery,
} from "../../../src/interop/codec/message-builders.js";
import { interopError, type StanzaError } from "../../../src/interop/codec/errors.js";
import { PROTOCOL_VERSION } from "../../../src/interop/codec/namespaces.js";
import type { XmlElement } from "../../../src/interop/codec/xml.js";
import type { BareJid, DeviceId, MessageId, StanzaId } from "../../../src/util/ids.js";
import { FakeAccounts } from "./fake-account.js";
import { FakeDirectory } from "./fake-directory.js";

export const BRIDGE_DOMAIN = "matrix.bridge.example";
export const SECRETS = {
  "matrix.bridge.example": "provider-secret",
  "evil.example": "evil-secret",
} as const;

export const newStanzaId = (): StanzaId => randomBytes(13).toString("hex") as StanzaId;

/** How the fake answers one provider message with an origin-id. */
export type MessagePolicy = "accept" | "manual";

/**
 * A scripted gatekeeper for the engine's tests: `wa.example` as an in-process component of the
 * simulator's XEP-0114 router, with a key directory, hello, pings and (by default) acceptance of
 * every message. Tests read what the bridge sent (`received`) and answer by hand when they need to.
 */
export class FakeGatekeeper {
  readonly directory = new FakeDirectory();
  readonly accounts = new FakeAccounts(this.directory);
  /** Every stanza the bridge sent to the gatekeeper, in order, with its exact serialisation. */
  readonly received: { stanza: XmlElement; text: string }[] = [];
  readonly acked: string[] = [];
  policy: MessagePolicy = "accept";
  /** Overrides the hello answer: return an error to refuse it. */
  helloAnswer: (() => StanzaError | undefined) | undefined;
  /** Overrides the ping answer (e.g. `hello-required`, §8.2). */
  pingAnswer: (() => StanzaError | undefined) | undefined;
  helloVersion = PROTOCOL_VERSION;
  features: string[] = [];
  limits: Record<string, number> = {};
  hellos = 0;
  private seq = 0;
  private local: LocalComponent | undefined;

  private constructor(public server: ComponentServer) {}

  static async start(): Promise<FakeGatekeeper> {
    const server = await ComponentServer.start({ secrets: SECRETS });
    const fake = new FakeGatekeeper(server);
    fake.attach();
    return fake;
  }

  get service(): string {
    return this.server.service;
  }

  /** Connects `wa.example` to the router (again). */
  attach(): void {
    this.local = this.server.attachLocal("wa.example", (stanza) => this.onStanza(stanza));
  }

  /** Takes `wa.example` off the router: the server bounces stanzas for it (peer offline). */
  detach(): void {
    this.local?.detach();
    this.local = undefined;
  }

  /** Kills the router abruptly and starts a new one on the same port (a server restart). */
  async restartServer(): Promise<void> {
    const port = this.server.port;
    await this.server.stop({ abrupt: true });
    this.server = await ComponentServer.start({ secrets: SECRETS, port });
    this.attach();
  }

  async stop(): Promise<void> {
    this.detach();
    await this.server.stop({ abrupt: true });
  }

  send(stanza: XmlElement): void {
    if (this.local === undefined) throw new Error("the fake gatekeeper is detached");
    this.local.send(stanza);
  }

  /** Messages from the bridge with an origin-id (not acks), decoded. */
  messages(): { msg: InboundMessage; text: string; stanza: XmlElement }[] {
    return this.received
      .filter((r) => r.stanza.name === "message")
      .map((r) => ({ msg: classifyMessage(r.stanza), text: r.text, stanza: r.stanza }))
      .filter((m) => m.msg.originId !== undefined);
  }

  accept(msg: InboundMessage, seq?: number): void {
    const originId = msg.originId as MessageId;
    const encrypted = msg.payload.kind === "encrypted";
    this.send(
      buildAccepted({
        id: `a-${originId}`,
        from: "wa.example",
        to: String(msg.from?.jid),
        accepted: {
          originId,
          stanzaId: newStanzaId(),
          stamp: new Date(),
          seq: encrypted ? (seq ?? ++this.seq) : undefined,
          conversation: (msg.to?.bare ?? "wa.example") as BareJid,
        },
      }),
    );
  }

  bounce(msg: InboundMessage, error: StanzaError, from?: string): void {
    this.send(
      buildBounce(
        {
          id: msg.id,
          from: String(msg.from?.jid),
          to: from ?? String(msg.to?.jid),
          originId: msg.originId,
        },
        error,
      ),
    );
  }

  /** A queued notification from wa.example (§11.7, §15.5), built but not sent. */
  notification(to: string, payload: XmlElement): { stanza: XmlElement; stanzaId: StanzaId } {
    const stanzaId = newStanzaId();
    const stanza = buildDelivery({
      id: `n-${stanzaId}`,
      from: "wa.example",
      to,
      payload,
      stanzaId: { id: stanzaId, by: "wa.example" as BareJid },
    });
    return { stanza, stanzaId };
  }

  staleDeviceList(msg: InboundMessage, jid: BareJid, devices: DeviceId[]): void {
    this.bounce(msg, interopError({ name: "stale-device-list", jid, devices }));
  }

  private onStanza(stanza: XmlElement): void {
    this.received.push({ stanza, text: stanza.toString() });
    if (stanza.name === "iq") {
      this.answerIq(stanza);
      return;
    }
    if (stanza.name !== "message") return;
    const msg = classifyMessage(stanza);
    if (msg.payload.kind === "ack") {
      this.acked.push(...msg.payload.items);
      return;
    }
    if (this.policy === "accept" && msg.originId !== undefined) this.accept(msg);
  }

  private answerIq(stanza: XmlElement): void {
    const iq = decodeIq(stanza);
    if (iq.header.type !== "get" && iq.header.type !== "set") return;
    const from = iq.header.from ?? "";
    const user = from.split("/")[0] as BareJid;
    const request = decodeIqRequest(iq);
    const reply = (payload?: XmlElement): void => this.send(encodeIqResult(iq.header, payload));
    const refuse = (error: StanzaError): void => this.send(encodeIqError(iq.header, error));
    switch (request.kind) {
      case "hello": {
        this.hellos += 1;
        this.pingAnswer = undefined;
        const error = this.helloAnswer?.();
        if (error !== undefined) return refuse(error);
        return reply(
          encodeHelloResult({
            version: this.helloVersion,
            session: `s-${this.hellos}`,
            features: this.features,
            announcedLimits: this.limits,
            mediaOrigins: ["https://media.wa.example"],
          }),
        );
      }
      case "ping": {
        const error = this.pingAnswer?.();
        if (error !== undefined) return refuse(error);
        return reply();
      }
      case "publish-bundle":
        this.directory.publishBundle(user, request.bundle);
        return reply();
      case "publish-devices": {
        const outcome = this.directory.publishDevices(user, request.devices);
        if ("missing" in outcome) {
          return refuse(interopError({ name: "no-bundle", device: outcome.missing }));
        }
        return reply(encodeDeviceList({ jid: user, version: outcome.version, devices: [] }));
      }
      case "fetch-devices": {
        const list = this.directory.list(request.jid);
        if (list === undefined) return refuse(interopError({ name: "not-reachable" }));
        return reply(encodeDeviceList({ jid: request.jid, ...list }));
      }
      case "fetch-bundles":
        return reply(
          encodeBundlesResult(request.jid, this.directory.fetch(request.jid, request.devices)),
        );
      case "upload-prekeys": {
        const counts = this.directory.addPreKeys(
          user,
          request.device,
          request.keys.ec,
          request.keys.kyber,
        );
        return reply(encodePreKeyCounts({ device: request.device, ...counts }));
      }
      case "rotate":
        this.directory.rotations.push({ jid: user, device: request.rotation.device });
        return reply();
      default: {
        const answer = this.accounts.answer(user, request);
        if (answer === undefined)
          return refuse({ type: "cancel", condition: "service-unavailable" });
        if ("error" in answer) return refuse(answer.error);
        return reply(answer.payload);
      }
    }
  }
}
