import { CodecError } from "./codec-error.js";
import { isElement, type XmlElement } from "./xml.js";

/**
 * Reading helpers shared by the decoders. They implement §7.3 (unknown attributes and children are
 * ignored) and turn every missing or repeated known node into a CodecError naming its path.
 */

const MAX_PATH_DEPTH = 32;

/** `/message/encrypted/header`, from the element's ancestry (ltx keeps parent links). */
export function pathOf(el: XmlElement): string {
  const names: string[] = [];
  let current: XmlElement | null = el;
  for (let i = 0; current !== null && i < MAX_PATH_DEPTH; i++) {
    names.push(current.getName());
    current = isElement(current.parent) ? current.parent : null;
  }
  return "/" + names.reverse().join("/");
}

export const attrPath = (el: XmlElement, name: string): string => `${pathOf(el)}/@${name}`;

export function fail(el: XmlElement, message: string, attr?: string): never {
  throw new CodecError(message, { path: attr === undefined ? pathOf(el) : attrPath(el, attr) });
}

/** Namespace of an element; the default namespace is inherited through the parent links. */
export function nsOf(el: XmlElement): string | undefined {
  const ns = el.getNS();
  return typeof ns === "string" ? ns : undefined;
}

export function is(el: XmlElement, name: string, ns: string): boolean {
  return el.getName() === name && nsOf(el) === ns;
}

export function elementChildren(el: XmlElement): XmlElement[] {
  return el.children.filter(isElement);
}

export function childrenNamed(el: XmlElement, name: string, ns: string): XmlElement[] {
  return elementChildren(el).filter((c) => is(c, name, ns));
}

/** The child `name` in `ns`, or undefined; two of them are a CodecError. */
export function optionalChild(el: XmlElement, name: string, ns: string): XmlElement | undefined {
  const found = childrenNamed(el, name, ns);
  if (found.length > 1) fail(found[1] as XmlElement, `second <${name}> element`);
  return found[0];
}

export function requiredChild(el: XmlElement, name: string, ns: string): XmlElement {
  const found = optionalChild(el, name, ns);
  if (found === undefined) fail(el, `missing <${name}> element`);
  return found;
}

/** Concatenated text children. ltx may hold numbers as text when elements were built by hand. */
export function textOf(el: XmlElement): string {
  let text = "";
  for (const child of el.children as unknown[]) {
    if (typeof child === "string") text += child;
    else if (typeof child === "number") text += String(child);
  }
  return text;
}

export function optionalAttr(el: XmlElement, name: string): string | undefined {
  const attrs: unknown = el.attrs;
  if (typeof attrs !== "object" || attrs === null || !Object.hasOwn(attrs, name)) return undefined;
  const value = (attrs as Record<string, unknown>)[name];
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return undefined;
}

export function requiredAttr(el: XmlElement, name: string): string {
  const value = optionalAttr(el, name);
  if (value === undefined) fail(el, `missing attribute ${name}`, name);
  return value;
}

/**
 * Reads an attribute through a value parser that throws CodecError with a placeholder path; the
 * error is re-thrown with the attribute's real path.
 */
export function parsedAttr<T>(
  el: XmlElement,
  name: string,
  parse: (value: string, path: string) => T,
): T | undefined {
  const value = optionalAttr(el, name);
  return value === undefined ? undefined : parse(value, attrPath(el, name));
}

export function requiredParsedAttr<T>(
  el: XmlElement,
  name: string,
  parse: (value: string, path: string) => T,
): T {
  return parse(requiredAttr(el, name), attrPath(el, name));
}

/** One of an enumeration, or undefined when the value is not (yet) known (§7.5). */
export function enumValue<T extends string>(values: readonly T[], value: string): T | undefined {
  return (values as readonly string[]).includes(value) ? (value as T) : undefined;
}

export function requiredEnumAttr<T extends string>(
  el: XmlElement,
  name: string,
  values: readonly T[],
): T {
  const value = requiredAttr(el, name);
  const known = enumValue(values, value);
  if (known === undefined) fail(el, `unknown ${name} ${JSON.stringify(value)}`, name);
  return known;
}

export function optionalEnumAttr<T extends string>(
  el: XmlElement,
  name: string,
  values: readonly T[],
): T | undefined {
  return optionalAttr(el, name) === undefined ? undefined : requiredEnumAttr(el, name, values);
}

/** Requires the element itself to be `name` in `ns`. */
export function expect(el: XmlElement, name: string, ns: string): void {
  if (!is(el, name, ns)) {
    fail(
      el,
      `expected <${name} xmlns='${ns}'>, got <${el.getName()}> in ${nsOf(el) ?? "no namespace"}`,
    );
  }
}
