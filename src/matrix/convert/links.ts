/**
 * Link and mention recognition for Matrix HTML. Only these schemes survive in either direction,
 * the set the client-server spec permits for `href` in `formatted_body`; `javascript:`, `data:`
 * and friends become plain text.
 */
const SAFE_SCHEMES = new Set(["http:", "https:", "ftp:", "mailto:", "magnet:"]);

const USER_ID = /^@[^:\s/]+:[^\s/?#]+$/;
const MATRIX_TO_USER = /^https:\/\/matrix\.to\/#\/((?:@|%40)[^/?#]+)(?:[?#].*)?$/;
const MATRIX_URI_USER = /^matrix:u\/([^/?#]+)(?:[?#].*)?$/;

function decode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** The user id a pill links to (`https://matrix.to/#/@u:s` or `matrix:u/u:s`), else undefined. */
export function mentionedUserId(href: string): string | undefined {
  const trimmed = href.trim();
  const viaMatrixTo = MATRIX_TO_USER.exec(trimmed)?.[1];
  const viaUri = MATRIX_URI_USER.exec(trimmed)?.[1];
  const raw = viaMatrixTo ?? (viaUri === undefined ? undefined : `@${viaUri}`);
  if (raw === undefined) return undefined;
  const userId = decode(raw);
  return userId !== undefined && USER_ID.test(userId) ? userId : undefined;
}

/** The href itself when it is an absolute URL with a permitted scheme and no control characters. */
export function safeLinkUrl(href: string): string | undefined {
  const url = href.trim();
  // eslint-disable-next-line no-control-regex
  if (url === "" || url.length > 4096 || /[\s\u0000-\u001f\u007f]/.test(url)) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  return SAFE_SCHEMES.has(parsed.protocol) ? url : undefined;
}

function bare(s: string): string {
  return s
    .replace(/^(?:https?:\/\/|mailto:)/i, "")
    .replace(/\/$/, "")
    .toLowerCase();
}

/** Whether a link's label already shows its target, so "label (url)" would only repeat it. */
export function sameLink(label: string, url: string): boolean {
  return label === url || bare(label) === bare(url);
}
