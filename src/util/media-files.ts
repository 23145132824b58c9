/** File name extensions for the MIME types media usually comes in, for names made up on arrival. */
const EXTENSIONS: Readonly<Record<string, string>> = {
  "image/jpeg": "jpg",
  "image/png": "png",
  "image/webp": "webp",
  "image/gif": "gif",
  "video/mp4": "mp4",
  "audio/ogg": "ogg",
  "audio/mpeg": "mp3",
  "audio/mp4": "m4a",
  "application/pdf": "pdf",
};

/** `base.ext` for a MIME type with a known extension (parameters and case ignored), else `base`. */
export function fileNameFor(base: string, mimeType: string): string {
  const essence = mimeType.split(";")[0]?.trim().toLowerCase() ?? "";
  const ext = EXTENSIONS[essence];
  return ext === undefined ? base : `${base}.${ext}`;
}
