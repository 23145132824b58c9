/** Matrix <-> neutral message conversion: the public surface for the Matrix side of the bridge. */
export { htmlToNeutral, neutralToHtml, neutralToPlain, escapeHtml, hasFormatting } from "./html.js";
export { matrixEventToNeutral, messageBody, stripReplyFallback } from "./to-neutral.js";
export {
  neutralToMatrix,
  roomMessage,
  editContent,
  reactionContent,
  redactionReason,
  callNoticeText,
  withQuote,
  RETRACTED_REASON,
  UNSUPPORTED_TEXT,
  type ReplyTarget,
} from "./from-neutral.js";
export { mediaToMatrix, defaultFileName, type UploadedMedia } from "./from-neutral-media.js";
export { parseGeoUri, formatGeoUri, type GeoPoint } from "./geo.js";
export { summarizeVcard, type ContactSummary } from "./vcard.js";
export type * from "./types.js";
