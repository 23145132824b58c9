import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { ConfigError, describeError } from "../util/errors.js";
import { writePrivateFile } from "./private-file.js";

/**
 * Writes a fresh 256-bit key for encryption at rest, base64 on one line, readable by its owner
 * only. Refuses to replace an existing key unless forced: a lost key makes every stored Signal
 * session and private key unreadable.
 */
export async function generateKeyFile(file: string, force: boolean): Promise<void> {
  try {
    await mkdir(path.dirname(path.resolve(file)), { recursive: true });
    await writePrivateFile(file, randomBytes(32).toString("base64") + "\n", force);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      throw new ConfigError(
        `${file} exists already; replacing it makes all stored keys unreadable (use --force to do it anyway)`,
      );
    }
    throw new ConfigError(`cannot write ${file}: ${describeError(err)}`);
  }
}
