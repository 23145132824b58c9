import type { BareJid, DeviceId } from "../../util/ids.js";
import { decodeBlockList, decodeReport, type Report } from "./abuse.js";
import { decodeHelloRequest, decodePing, type HelloRequest } from "./core.js";
import { decodeLookupRequest, type LookupRequest } from "./discovery.js";
import { decodeCreate, decodeGroupRequest, type GroupRequest } from "./groups.js";
import {
  decodeBinding,
  decodeConfirmCode,
  decodeProfile,
  decodeRequestCode,
  decodeUnbind,
  type ConfirmCode,
  type RequestCode,
} from "./identity.js";
import type { DecodedIq } from "./iq.js";
import {
  decodeBundlesFetch,
  decodeDevicesFetch,
  decodeDevicesPublish,
  decodePreKeyCountQuery,
  decodePreKeysUpload,
  decodePublishedBundle,
  decodeRotate,
  type OneTimePreKeys,
  type PublishedBundle,
  type Rotation,
} from "./keys.js";
import { decodeSlotRequest, type SlotRequest } from "./media.js";
import { NS } from "./namespaces.js";
import { fail, nsOf } from "./read.js";

/**
 * The gatekeeper's view of an IQ request: every get/set payload of §8-§17 as one typed union.
 * A payload it does not know is `unknown`, to be answered `service-unavailable` (§7.4); a known
 * payload in the wrong IQ type is `bad-request`.
 */
export type IqRequest =
  | { kind: "hello"; hello: HelloRequest }
  | { kind: "ping" }
  | { kind: "request-code"; request: RequestCode }
  | { kind: "confirm-code"; confirm: ConfirmCode }
  | { kind: "binding" }
  | { kind: "unbind" }
  | { kind: "profile"; handle: string | undefined }
  | { kind: "lookup"; lookup: LookupRequest }
  | { kind: "publish-bundle"; bundle: PublishedBundle }
  | { kind: "publish-devices"; devices: DeviceId[] }
  | { kind: "fetch-devices"; jid: BareJid }
  | { kind: "fetch-bundles"; jid: BareJid; devices: DeviceId[] }
  | { kind: "upload-prekeys"; device: DeviceId; keys: OneTimePreKeys }
  | { kind: "count-prekeys"; device: DeviceId }
  | { kind: "rotate"; rotation: Rotation }
  | { kind: "media-slot"; request: SlotRequest }
  | { kind: "blocklist" }
  | { kind: "block"; jids: BareJid[] }
  | { kind: "unblock"; jids: BareJid[] }
  | { kind: "report"; report: Report }
  | { kind: "group-create"; subject: string | undefined; participants: BareJid[] }
  | { kind: "group"; request: GroupRequest }
  | { kind: "unknown"; payload: string };

interface IqRequestOptions {
  /** `max-lookup-batch` (§10.2). */
  maxLookupBatch?: number;
}

export function decodeIqRequest(iq: DecodedIq, options: IqRequestOptions = {}): IqRequest {
  const { type } = iq.header;
  const el = iq.payload;
  if (el === undefined || (type !== "get" && type !== "set")) {
    return { kind: "unknown", payload: el === undefined ? "" : el.getName() };
  }
  const key = `{${nsOf(el) ?? ""}}${el.getName()}`;
  const want = (expected: "get" | "set"): void => {
    if (type !== expected) fail(el, `${key} in an IQ ${type}, expected ${expected}`);
  };
  const get = type === "get";
  switch (key) {
    case `{${NS.core}}hello`:
      want("get");
      return { kind: "hello", hello: decodeHelloRequest(el) };
    case `{${NS.ping}}ping`:
      want("get");
      decodePing(el);
      return { kind: "ping" };
    case `{${NS.identity}}request-code`:
      want("set");
      return { kind: "request-code", request: decodeRequestCode(el) };
    case `{${NS.identity}}confirm-code`:
      want("set");
      return { kind: "confirm-code", confirm: decodeConfirmCode(el) };
    case `{${NS.identity}}binding`:
      want("get");
      decodeBinding(el);
      return { kind: "binding" };
    case `{${NS.identity}}unbind`:
      want("set");
      decodeUnbind(el);
      return { kind: "unbind" };
    case `{${NS.identity}}profile`:
      want("set");
      return { kind: "profile", handle: decodeProfile(el).handle };
    case `{${NS.discovery}}lookup`:
      want("get");
      return { kind: "lookup", lookup: decodeLookupRequest(el, options.maxLookupBatch) };
    case `{${NS.keys}}bundle`:
      want("set");
      return { kind: "publish-bundle", bundle: decodePublishedBundle(el) };
    case `{${NS.keys}}devices`:
      return get
        ? { kind: "fetch-devices", jid: decodeDevicesFetch(el) }
        : { kind: "publish-devices", devices: decodeDevicesPublish(el) };
    case `{${NS.keys}}bundles`:
      want("get");
      return { kind: "fetch-bundles", ...decodeBundlesFetch(el) };
    case `{${NS.keys}}prekeys`: {
      if (get) return { kind: "count-prekeys", device: decodePreKeyCountQuery(el) };
      const { device, ec, kyber } = decodePreKeysUpload(el);
      return { kind: "upload-prekeys", device, keys: { ec, kyber } };
    }
    case `{${NS.keys}}rotate`:
      want("set");
      return { kind: "rotate", rotation: decodeRotate(el) };
    case `{${NS.media}}request`:
      want("get");
      return { kind: "media-slot", request: decodeSlotRequest(el) };
    case `{${NS.abuse}}blocklist`:
      want("get");
      decodeBlockList(el, "blocklist");
      return { kind: "blocklist" };
    case `{${NS.abuse}}block`:
      want("set");
      return { kind: "block", jids: decodeBlockList(el, "block") };
    case `{${NS.abuse}}unblock`:
      want("set");
      return { kind: "unblock", jids: decodeBlockList(el, "unblock") };
    case `{${NS.abuse}}report`:
      want("set");
      return { kind: "report", report: decodeReport(el) };
    case `{${NS.groups}}create`:
      want("set");
      return { kind: "group-create", ...decodeCreate(el) };
    case `{${NS.groups}}info`:
      want("get");
      return { kind: "group", request: decodeGroupRequest(el) };
    case `{${NS.groups}}add`:
    case `{${NS.groups}}remove`:
    case `{${NS.groups}}promote`:
    case `{${NS.groups}}demote`:
    case `{${NS.groups}}subject`:
    case `{${NS.groups}}leave`:
      want("set");
      return { kind: "group", request: decodeGroupRequest(el) };
    default:
      return { kind: "unknown", payload: key };
  }
}
