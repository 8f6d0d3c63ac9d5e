/**
 * JSON that keeps its numbers as written: OTIO writes `24.0`, and a merge
 * that rewrote it as `24` would change bytes nobody edited. Numbers are read
 * as raw JSON text (`JSON.rawJSON`, through the reviver's source access) and
 * written back unchanged; equality compares their values, not their text.
 */

export type JsonValue = null | boolean | string | RawNumber | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}
/** A number kept as its source text (a frozen `{ rawJSON }` object). */
export interface RawNumber {
  readonly rawJSON: string;
}

// ES2025 JSON source text access; the project's lib is ES2024.
const RawJson = JSON as unknown as {
  rawJSON(text: string): RawNumber;
  isRawJSON(value: unknown): value is RawNumber;
};

type Reviver = (this: unknown, key: string, value: unknown) => unknown;
const keepNumbers = ((_key: string, value: unknown, context: { source: string }) =>
  typeof value === 'number' ? RawJson.rawJSON(context.source) : value) as unknown as Reviver;

/** Parses JSON text keeping each number's source text; throws on malformed text. */
export function parseJson(text: string): JsonValue {
  return JSON.parse(text, keepNumbers) as JsonValue;
}

export function isRawNumber(value: unknown): value is RawNumber {
  return RawJson.isRawJSON(value);
}

export function isObject(value: JsonValue | undefined): value is JsonObject {
  return (
    value !== null &&
    value !== undefined &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    !isRawNumber(value)
  );
}

/** The value as canonical text: keys sorted, numbers by value; equal data, equal text. */
export function canonical(value: JsonValue | undefined): string {
  if (value === undefined) return 'undefined';
  if (isRawNumber(value)) return JSON.stringify(Number(value.rawJSON));
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function sameJson(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  return canonical(a) === canonical(b);
}

/** Written as OTIO writes: 4-space indent, numbers as they were read. */
export function writeJson(value: JsonValue): string {
  return JSON.stringify(value, null, 4);
}
