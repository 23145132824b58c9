import { open } from "node:fs/promises";

/**
 * Writes a file only its owner may read (tokens, keys, the database). The mode given to open()
 * applies only when the file is created, so a replaced file (`force`) is set to 0600 as well:
 * `--force` over a file someone made world-readable must not keep it so. Throws EEXIST (as the
 * ErrnoException) when the file exists and `force` is false.
 */
export async function writePrivateFile(file: string, text: string, force: boolean): Promise<void> {
  const handle = await open(file, force ? "w" : "wx", 0o600);
  try {
    await handle.chmod(0o600);
    await handle.writeFile(text);
  } finally {
    await handle.close();
  }
}
