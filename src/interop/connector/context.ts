import type { RemoteUserId } from "../../core/network.js";
import type { BareJid, MatrixUserId } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import { localpartFromMatrixUserId, parseUserJid } from "../codec/jid.js";
import type { OutboundContext } from "../convert/index.js";
import type { SignalCrypto } from "../crypto/signal-crypto.js";
import type { ProviderEngine } from "../provider/engine.js";
import { ConvertError } from "../convert/index.js";

/** What logins and login processes share with their connector. */
export interface ConnectorContext {
  readonly engine: ProviderEngine;
  readonly crypto: SignalCrypto;
  /** The bridge's component domain: local users are `<localpart>@<domain>` (§5.1). */
  readonly domain: string;
  readonly gatekeeperDomain: string;
  /** Where media is staged while it is encrypted or decrypted. */
  readonly workDir: string;
  readonly log: Logger;
}

/** The provider user JID of a Matrix user (§5.1); its only device is 1. */
export function localJidOf(ctx: ConnectorContext, user: MatrixUserId): BareJid {
  return `${localpartFromMatrixUserId(user)}@${ctx.domain}` as BareJid;
}

/** A contact id from the core as a user JID; a malformed one is refused as `invalid-reference`. */
export function contactJid(contact: RemoteUserId): BareJid {
  try {
    return parseUserJid(contact, "contact");
  } catch (err) {
    throw new ConvertError("invalid-reference", `${contact} is not a WhatsApp contact`, {
      cause: err,
    });
  }
}

/** Features and limits of the latest hello, for the conversion towards the gatekeeper (§7.6). */
export function outboundContext(ctx: ConnectorContext): OutboundContext {
  const limits = ctx.engine.session.limits;
  return {
    features: ctx.engine.session.info?.features ?? new Set<string>(),
    limits: {
      maxBodyBytes: limits["max-body-bytes"],
      maxReactions: limits["max-reactions"],
      maxThumbnailBytes: limits["max-thumbnail-bytes"],
      maxEnvelopeBytes: limits["max-envelope-bytes"],
    },
  };
}
