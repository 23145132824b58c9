import assert from "node:assert/strict";
import { CodecError } from "../../../src/interop/codec/codec-error.js";
import { decodeIq } from "../../../src/interop/codec/iq.js";
import { parseXml, type XmlElement } from "../../../src/interop/codec/xml.js";
import { SPEC, type SpecExample } from "./fixtures.js";

/** The payload of a spec example IQ. */
export function payloadOf(example: SpecExample): XmlElement {
  const payload = decodeIq(parseXml(SPEC[example])).payload;
  assert.ok(payload !== undefined, `${example} has a payload`);
  return payload;
}

/**
 * Decodes, re-encodes, serializes, re-parses and decodes again: both decodings must be equal, so
 * that nothing is lost or invented on the way.
 */
export function roundTrip<T>(
  el: XmlElement,
  decode: (el: XmlElement) => T,
  encode: (value: T) => XmlElement,
): T {
  const first = decode(el);
  const again = decode(parseXml(encode(first).toString()));
  assert.deepEqual(again, first);
  return first;
}

/** Asserts that `fn` throws a CodecError (and nothing else), optionally checking its fields. */
export function assertCodecError(
  fn: () => unknown,
  expected: { condition?: string; appCondition?: string; path?: RegExp; message?: RegExp } = {},
): CodecError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof CodecError, `expected CodecError, got ${String(caught)}`);
  if (expected.condition !== undefined) assert.equal(caught.condition, expected.condition);
  if (expected.appCondition !== undefined) assert.equal(caught.appCondition, expected.appCondition);
  if (expected.path !== undefined) assert.match(caught.path, expected.path);
  if (expected.message !== undefined) assert.match(caught.message, expected.message);
  return caught;
}

/** Parses `text` and returns its root element. */
export const el = (text: string): XmlElement => parseXml(text);
