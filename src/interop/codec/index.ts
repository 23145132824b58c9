/**
 * The interop protocol codec: stanza <-> typed objects, one module per protocol feature, shared by
 * the bridge (provider side) and the gatekeeper simulator. Decoders throw only CodecError
 * (`tryDecode` gives a result value instead); encoders build elements with `xml()`.
 */
export * from "./abuse.js";
export * from "./codec-error.js";
export * from "./content.js";
export * from "./core.js";
export * from "./delivery.js";
export * from "./discovery.js";
export * from "./e2ee.js";
export * from "./envelope.js";
export * from "./envelope-parser.js";
export * from "./errors.js";
export * from "./groups.js";
export * from "./identity.js";
export * from "./iq.js";
export * from "./iq-requests.js";
export * from "./key-notifications.js";
export * from "./keys.js";
export * from "./media.js";
export * from "./message.js";
export * from "./message-builders.js";
export * from "./message-checks.js";
export * from "./namespaces.js";
export * from "./primitives.js";
export * from "./xml.js";
