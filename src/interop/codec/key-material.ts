import { CodecError } from "./codec-error.js";
import {
  encodeBase64,
  formatBoolean,
  parseBase64,
  parseBoolean,
  parseInteger,
} from "./primitives.js";
import { attrPath, parsedAttr, pathOf, requiredAttr, textOf } from "./read.js";
import { xml, type XmlElement } from "./xml.js";

/**
 * Key formats of §11.1. Wrong base64 is plain `bad-request` (§2); base64 that decodes to bytes of
 * the wrong length or type byte is `bad-request` + `<bad-key/>`. Signatures are checked by the
 * gatekeeper against the identity key, not here.
 */

const EC_KEY_BYTES = 33;
const EC_KEY_TYPE = 0x05;
const KYBER_KEY_BYTES = 1569;
const KYBER_KEY_TYPE = 0x08;
const SIGNATURE_BYTES = 64;
const MAX_PREKEY_ID = 16777215;
const MAX_REGISTRATION_ID = 16380;

export interface PreKey {
  id: number;
  publicKey: Uint8Array;
}
export interface SignedPreKey extends PreKey {
  signature: Uint8Array;
}
export interface KyberPreKey extends SignedPreKey {
  lastResort: boolean;
}

function keyBytes(
  text: string,
  path: string,
  length: number,
  type: number,
  what: string,
): Uint8Array {
  const bytes = parseBase64(text, path);
  if (bytes.length !== length || bytes[0] !== type) {
    throw new CodecError(`malformed ${what}: ${bytes.length} bytes, type ${bytes[0] ?? "none"}`, {
      path,
      appCondition: "bad-key",
    });
  }
  return bytes;
}

const parseEcPublicKey = (text: string, path: string): Uint8Array =>
  keyBytes(text, path, EC_KEY_BYTES, EC_KEY_TYPE, "EC public key");

const parseKyberPublicKey = (text: string, path: string): Uint8Array =>
  keyBytes(text, path, KYBER_KEY_BYTES, KYBER_KEY_TYPE, "Kyber public key");

function parseSignature(text: string, path: string): Uint8Array {
  const bytes = parseBase64(text, path);
  if (bytes.length !== SIGNATURE_BYTES) {
    throw new CodecError(`signature of ${bytes.length} bytes`, { path, appCondition: "bad-key" });
  }
  return bytes;
}

const parsePreKeyId = (text: string, path: string): number =>
  parseInteger(text, path, { min: 1, max: MAX_PREKEY_ID });

export const parseRegistrationId = (text: string, path: string): number =>
  parseInteger(text, path, { min: 1, max: MAX_REGISTRATION_ID });

const textPath = (el: XmlElement): string => `${pathOf(el)}/text()`;
const id = (el: XmlElement): number => parsePreKeyId(requiredAttr(el, "id"), attrPath(el, "id"));
const signature = (el: XmlElement): Uint8Array =>
  parseSignature(requiredAttr(el, "signature"), attrPath(el, "signature"));

export const decodeIdentityKey = (el: XmlElement): Uint8Array =>
  parseEcPublicKey(textOf(el), textPath(el));

export const decodePreKey = (el: XmlElement): PreKey => ({
  id: id(el),
  publicKey: parseEcPublicKey(textOf(el), textPath(el)),
});

export const decodeSignedPreKey = (el: XmlElement): SignedPreKey => ({
  id: id(el),
  signature: signature(el),
  publicKey: parseEcPublicKey(textOf(el), textPath(el)),
});

export const decodeKyberPreKey = (el: XmlElement): KyberPreKey => ({
  id: id(el),
  signature: signature(el),
  lastResort: parsedAttr(el, "last-resort", parseBoolean) ?? false,
  publicKey: parseKyberPublicKey(textOf(el), textPath(el)),
});

// Children of key elements inherit urn:interop:keys:0 from their parent; no xmlns is written.
export const encodeIdentityKey = (key: Uint8Array): XmlElement =>
  xml("identity", {}, encodeBase64(key));

export const encodePreKey = (k: PreKey): XmlElement =>
  xml("prekey", { id: k.id }, encodeBase64(k.publicKey));

export const encodeSignedPreKey = (k: SignedPreKey): XmlElement =>
  xml(
    "signed-prekey",
    { id: k.id, signature: encodeBase64(k.signature) },
    encodeBase64(k.publicKey),
  );

export const encodeKyberPreKey = (k: KyberPreKey): XmlElement =>
  xml(
    "kyber-prekey",
    {
      id: k.id,
      signature: encodeBase64(k.signature),
      "last-resort": k.lastResort ? formatBoolean(true) : undefined,
    },
    encodeBase64(k.publicKey),
  );
