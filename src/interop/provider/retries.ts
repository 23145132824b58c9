import { randomUUID } from "node:crypto";
import { messageId, type BareJid, type DeviceId, type MessageId } from "../../util/ids.js";
import type { RetryReason } from "../codec/e2ee.js";
import { deviceJid } from "../codec/jid.js";
import { decodeEnvelope, encodeEnvelope } from "../codec/envelope.js";
import { buildEncryptedMessage, buildRetryRequest } from "../codec/message-builders.js";
import type { SignalCrypto } from "../crypto/signal-crypto.js";
import type { DeviceAddress } from "../crypto/types.js";
import type { KeyDirectory } from "./directory.js";
import { exactStanza, type Outbox } from "./outbox.js";
import type { NewOutboxRow } from "../store/outbox.js";
import type { HelloSession } from "./session.js";

interface RetryAnswererOptions {
  readonly crypto: SignalCrypto;
  readonly directory: KeyDirectory;
  readonly session: HelloSession;
  readonly outbox: Outbox;
}

/** The sending side of §12.5: answers the retry requests that crypto's RetryLedger authorises. */
export class RetryAnswerer {
  constructor(readonly options: RetryAnswererOptions) {}

  /**
   * Archives the session with the requesting device, fetches a fresh bundle, re-encrypts the
   * stored envelope for that device only and queues the re-send (same origin-id, `retry` =
   * the request's count). Returns "answered", or why the request was not authorised.
   */
  async answer(
    local: { jid: BareJid; device: DeviceId },
    requester: DeviceAddress,
    request: { originId: MessageId; count: number },
  ): Promise<"answered" | string> {
    const { crypto, directory, session } = this.options;
    const device = await crypto.device(local.jid, local.device);
    const auth = await device.retries.authorize({
      originId: request.originId,
      requester,
      count: request.count,
      windowMs: session.limits["retry-window-seconds"] * 1000,
    });
    if (!auth.ok) return auth.reason;
    await device.retries.prepareAnswer(requester);
    const absent = await directory.ensureSessions(device, [requester]);
    if (absent.length > 0) return "no-bundle";
    const senderJid = deviceJid(local.jid, local.device);
    const to = deviceJid(requester.jid, requester.device);
    await device.retries.encryptAnswer(
      { originId: request.originId, requester, count: request.count, envelope: auth.envelope },
      async (key, trx) => {
        const stanza = buildEncryptedMessage({
          type: "chat",
          from: senderJid,
          to,
          originId: request.originId,
          encrypted: {
            sid: local.device,
            keyGroups: [
              {
                jid: requester.jid,
                keys: [{ rid: key.rid, kex: key.kex, ciphertext: key.ciphertext }],
              },
            ],
            group: undefined,
            retry: request.count,
          },
        });
        await this.options.outbox.insert(trx, {
          kind: "retry-answer",
          senderJid,
          conversationJid: requester.jid,
          toJid: to,
          originId: request.originId,
          resendKey: `retry:${to}:${request.count}`,
          stanza: exactStanza(stanza),
        });
      },
    );
    this.options.outbox.kick();
    return "answered";
  }
}

/**
 * A group retry answer (§17.6, E29, E30): authorised as in §12.5 (every member device counts as
 * intended, as the group send remembered them), the original group envelope with the current
 * SKDM appended while the requester is still a member, 1:1-encrypted for the requesting device
 * only, sent to the group JID with `retry` and no `<group>`.
 */
export async function answerGroupRetry(
  options: RetryAnswererOptions,
  local: { jid: BareJid; device: DeviceId },
  group: BareJid,
  requester: DeviceAddress,
  request: { originId: MessageId; count: number },
  stillMember: boolean,
): Promise<"answered" | string> {
  const { crypto, directory, session } = options;
  const device = await crypto.device(local.jid, local.device);
  const auth = await device.retries.authorize({
    originId: request.originId,
    requester,
    count: request.count,
    windowMs: session.limits["retry-window-seconds"] * 1000,
  });
  if (!auth.ok) return auth.reason;
  if (auth.conversationJid !== group) return "other-conversation";
  const original = decodeEnvelope(auth.envelope, { maxEnvelopeBytes: Number.MAX_SAFE_INTEGER });
  let envelope = auth.envelope;
  if (stillMember) {
    const { skdm } = await device.groups.distribution(group);
    envelope = new Uint8Array(
      Buffer.from(
        encodeEnvelope(
          { ...original, content: [...original.content, { kind: "sender-key", group, skdm }] },
          { maxEnvelopeBytes: Number.MAX_SAFE_INTEGER },
        ),
        "utf8",
      ),
    );
  }
  await device.retries.prepareAnswer(requester);
  const absent = await directory.ensureSessions(device, [requester]);
  if (absent.length > 0) return "no-bundle";
  const senderJid = deviceJid(local.jid, local.device);
  await device.retries.encryptAnswer(
    { originId: request.originId, requester, count: request.count, envelope },
    async (key, trx) => {
      const stanza = buildEncryptedMessage({
        type: "groupchat",
        from: senderJid,
        to: group,
        originId: request.originId,
        encrypted: {
          sid: local.device,
          keyGroups: [
            {
              jid: requester.jid,
              keys: [{ rid: key.rid, kex: key.kex, ciphertext: key.ciphertext }],
            },
          ],
          group: undefined,
          retry: request.count,
        },
      });
      await options.outbox.insert(trx, {
        kind: "retry-answer",
        senderJid,
        conversationJid: group,
        toJid: group,
        originId: request.originId,
        resendKey: `retry:${requester.jid}/${requester.device}:${request.count}`,
        stanza: exactStanza(stanza),
      });
    },
  );
  options.outbox.kick();
  return "answered";
}

/** A group retry request (§17.6): to the group JID, naming the failed message's device. */
export function groupRetryRequestRow(
  local: { jid: BareJid; device: DeviceId; registration: number },
  group: BareJid,
  author: DeviceAddress,
  request: { id: MessageId; count: 1 | 2; reason: RetryReason },
): NewOutboxRow {
  const originId = messageId(randomUUID());
  const from = deviceJid(local.jid, local.device);
  return {
    kind: "retry-request",
    senderJid: from,
    conversationJid: group,
    toJid: group,
    originId,
    stanza: exactStanza(
      buildRetryRequest({
        type: "groupchat",
        from,
        to: group,
        originId,
        retry: {
          ...request,
          registration: local.registration,
          author: { jid: author.jid, device: author.device },
        },
      }),
    ),
  };
}

/** A retry request for a message that failed to decrypt (§12.5), to the sending device. */
export function retryRequestRow(
  local: { jid: BareJid; device: DeviceId; registration: number },
  sender: DeviceAddress,
  request: { id: MessageId; count: 1 | 2; reason: RetryReason },
): NewOutboxRow {
  const originId = messageId(randomUUID());
  const from = deviceJid(local.jid, local.device);
  const to = deviceJid(sender.jid, sender.device);
  return {
    kind: "retry-request",
    senderJid: from,
    conversationJid: sender.jid,
    toJid: to,
    originId,
    stanza: exactStanza(
      buildRetryRequest({
        type: "chat",
        from,
        to,
        originId,
        retry: { ...request, registration: local.registration, author: undefined },
      }),
    ),
  };
}
