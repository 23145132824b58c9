import { readFile } from "node:fs/promises";
import { dump, load as loadYaml } from "js-yaml";
import { z } from "zod";
import { ConfigError, describeError } from "../util/errors.js";
import { writePrivateFile } from "./private-file.js";
import type { Registration } from "./registration.js";

const namespaceList = z.array(z.object({ exclusive: z.boolean(), regex: z.string() }));

const registrationSchema = z.object({
  id: z.string().min(1),
  url: z.string().nullable(),
  as_token: z.string().min(1),
  hs_token: z.string().min(1),
  sender_localpart: z.string().min(1),
  rate_limited: z.boolean().default(false),
  namespaces: z.object({
    users: namespaceList.default([]),
    aliases: namespaceList.default([]),
    rooms: namespaceList.default([]),
  }),
  protocols: z.array(z.string()).default([]),
  receive_ephemeral: z.boolean().default(false),
  "de.sorunome.msc2409.push_ephemeral": z.boolean().default(false),
});

export async function readRegistration(file: string): Promise<Registration> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(
      `cannot read the registration file ${file} (${describeError(err)}); generate it with ` +
        `\`matrix-whatsapp-interop -r -c config.yaml -f ${file}\``,
    );
  }
  let raw: unknown;
  try {
    raw = loadYaml(text);
  } catch (err) {
    throw new ConfigError(`${file} is not valid YAML: ${describeError(err).split("\n")[0]}`);
  }
  const result = registrationSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`${file} is not a valid registration`, problems);
  }
  return { ...result.data, url: result.data.url ?? "" };
}

export async function writeRegistrationFile(
  file: string,
  registration: Registration,
  force: boolean,
): Promise<void> {
  const text =
    "# Application service registration for matrix-whatsapp-interop.\n" +
    "# Give this file to the homeserver (Synapse: app_service_config_files) and keep it secret:\n" +
    "# the tokens authenticate the bridge and the homeserver to each other.\n" +
    dump(registration, { lineWidth: -1 });
  try {
    // 0600: the file holds both tokens.
    await writePrivateFile(file, text, force);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      throw new ConfigError(
        `${file} exists already; pass --force to replace it (the homeserver must then load the new tokens)`,
      );
    }
    throw new ConfigError(`cannot write ${file}: ${describeError(err)}`);
  }
}
