import { dump } from "js-yaml";
import { z } from "zod";
import { configSchema } from "./schema.js";

/**
 * Renders config.sample.yaml from the schema: each key with its description as a comment and its
 * default (or, for required keys, an example) as the value. `npm run build` writes the file and a
 * test checks that the committed file matches, so the sample can never drift from the schema.
 */
export function renderSample(): string {
  const header = [
    "# matrix-whatsapp-interop configuration.",
    "# Generated from src/config/schema.ts (npm run config:sample); every key is optional unless",
    "# marked Required, and the value shown is its default.",
    "",
  ];
  return header.concat(renderObject(configSchema, 0)).join("\n") + "\n";
}

interface Info {
  description: string | undefined;
  example: unknown;
  defaultValue: unknown;
  hasDefault: boolean;
  core: z.core.$ZodType;
}

/** Peels default/prefault/optional wrappers, collecting the description and default on the way. */
function inspect(schema: z.core.$ZodType): Info {
  let current = schema;
  let description: string | undefined;
  let example: unknown;
  let defaultValue: unknown;
  let hasDefault = false;
  for (;;) {
    const meta = z.globalRegistry.get(current);
    description ??= meta?.description;
    example ??= meta?.example;
    const def = current._zod.def as z.core.$ZodTypeDef & {
      innerType?: z.core.$ZodType;
      defaultValue?: unknown;
    };
    if (def.type === "default" || def.type === "prefault") {
      if (!hasDefault) {
        hasDefault = true;
        defaultValue = def.defaultValue;
      }
      current = def.innerType as z.core.$ZodType;
    } else if (def.type === "optional") {
      current = def.innerType as z.core.$ZodType;
    } else {
      return { description, example, defaultValue, hasDefault, core: current };
    }
  }
}

function renderObject(schema: z.core.$ZodType, indent: number): string[] {
  const { core } = inspect(schema);
  const shape = (core._zod.def as unknown as { shape: Record<string, z.core.$ZodType> }).shape;
  const lines: string[] = [];
  const pad = " ".repeat(indent);
  for (const [key, field] of Object.entries(shape)) {
    const info = inspect(field);
    if (info.description !== undefined) {
      for (const line of wrap(info.description, 96 - indent)) lines.push(`${pad}# ${line}`);
    }
    if (info.core._zod.def.type === "object") {
      lines.push(`${pad}${key}:`);
      lines.push(...renderObject(info.core, indent + 2));
    } else {
      const value = info.hasDefault ? info.defaultValue : info.example;
      lines.push(...renderValue(key, value, indent));
    }
    if (indent === 0) lines.push("");
  }
  return lines;
}

function renderValue(key: string, value: unknown, indent: number): string[] {
  const pad = " ".repeat(indent);
  const isEmptyCollection =
    (Array.isArray(value) && value.length === 0) ||
    (typeof value === "object" && value !== null && Object.keys(value).length === 0);
  if (typeof value === "object" && value !== null && !isEmptyCollection) {
    const body = dump(value, { lineWidth: 96 - indent })
      .trimEnd()
      .split("\n");
    if (Array.isArray(value)) {
      // Short scalars (country codes): a wrapped flow list reads better than one item per line.
      const items = value.map((item) => dump(item, { flowLevel: 0 }).trimEnd());
      const wrapped = wrap(items.join(", "), 94 - indent);
      // Flow content must be indented deeper than its key, the closing bracket included.
      return [`${pad}${key}: [`, ...wrapped.map((line) => `${pad}  ${line}`)].map((line, i, all) =>
        i === all.length - 1 ? `${line}]` : line,
      );
    }
    return [`${pad}${key}:`, ...body.map((line) => `${pad}  ${line}`)];
  }
  return [`${pad}${key}: ${dump(value, { flowLevel: 0 }).trimEnd()}`];
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line.length > 0 && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line.length === 0 ? word : `${line} ${word}`;
    }
  }
  if (line.length > 0) lines.push(line);
  return lines;
}
