import { authenticate } from "../auth.js";
import type { HomeserverCore } from "../core.js";
import { MatrixError, notFound } from "../errors.js";
import { ok, param, type HsReply, type HsRequest } from "../router.js";
import type { RouteContext } from "../server.js";
import type { MediaItem } from "./store.js";

/** Types a browser may render inline without risk (spec v1.12, content repository security). */
const INLINE_SAFE =
  /^(image\/(png|jpeg|gif|webp|apng|avif)|text\/plain|audio\/[\w.+-]+|video\/[\w.+-]+)$/;

export interface MediaRouteOptions {
  /** Refuse unauthenticated downloads of media uploaded while frozen (Synapse's legacy media freeze). */
  freezeLegacyMedia: boolean;
}

/**
 * Legacy `/_matrix/media/{r0,v3}` on every profile, authenticated `/_matrix/client/v1/media` on
 * the `spec` and `synapse-current` profiles: on the older Synapse profiles those paths fall
 * through to M_UNRECOGNIZED (1.67: 400, 1.92: 404). `synapse-current` plays Synapse 1.120+ with
 * `enable_authenticated_media` (its default): every upload is new media, which the legacy
 * download answers 404 M_NOT_FOUND, so only the authenticated endpoints reach it.
 */
export function registerMediaRoutes(ctx: RouteContext, options: MediaRouteOptions): void {
  const core = ctx.core;
  const config = (): HsReply => ok({ "m.upload.size": core.media.maxUploadBytes });

  for (const version of ["r0", "v3"]) {
    const base = `/_matrix/media/${version}`;
    ctx.router.add("POST", `${base}/upload`, (req) => upload(core, req));
    ctx.router.add("GET", `${base}/config`, (req) => {
      authenticate(core, req);
      return config();
    });
    const legacyDownload = (req: HsRequest): HsReply => {
      const item = core.media.get(param(req, "serverName"), param(req, "mediaId"));
      if (options.freezeLegacyMedia || core.profile === "synapse-current")
        throw notFound("Unauthenticated media is frozen; use /_matrix/client/v1/media");
      return download(item, req.params["fileName"]);
    };
    ctx.router.add("GET", `${base}/download/:serverName/:mediaId`, legacyDownload);
    ctx.router.add("GET", `${base}/download/:serverName/:mediaId/:fileName`, legacyDownload);
  }

  if (core.profile !== "spec" && core.profile !== "synapse-current") return;
  const authedDownload = (req: HsRequest): HsReply => {
    authenticate(core, req);
    return download(
      core.media.get(param(req, "serverName"), param(req, "mediaId")),
      req.params["fileName"],
    );
  };
  ctx.authed("GET", "/media/config", () => config(), ["v1"]);
  ctx.client("GET", "/media/download/:serverName/:mediaId", authedDownload, ["v1"]);
  ctx.client("GET", "/media/download/:serverName/:mediaId/:fileName", authedDownload, ["v1"]);
}

function upload(core: HomeserverCore, req: HsRequest): HsReply {
  const who = authenticate(core, req);
  if (req.bodyTooLarge) {
    throw new MatrixError(
      413,
      "M_TOO_LARGE",
      `Upload exceeds the limit of ${core.media.maxUploadBytes} bytes`,
    );
  }
  const header = req.headers["content-type"];
  const contentType =
    typeof header === "string" && header !== "" ? header : "application/octet-stream";
  const fileName = req.query.get("filename") ?? undefined;
  const uri = core.media.put(req.body, contentType, who.userId, fileName);
  return ok({ content_uri: uri });
}

function download(item: MediaItem, requestedName: string | undefined): HsReply {
  const name = requestedName ?? item.fileName;
  const disposition = INLINE_SAFE.test(item.contentType.split(";")[0]?.trim() ?? "")
    ? "inline"
    : "attachment";
  const headers: Record<string, string> = {
    "content-disposition":
      name === undefined
        ? disposition
        : `${disposition}; filename*=utf-8''${encodeURIComponent(name)}`,
    "content-security-policy":
      "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';",
    "cross-origin-resource-policy": "cross-origin",
  };
  return { status: 200, binary: { data: item.data, contentType: item.contentType, headers } };
}
