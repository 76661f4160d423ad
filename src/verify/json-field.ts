/**
 * Reads a non-empty string property of a parsed JSON object. Anything else
 * (missing, number, empty string, or `json` not being an object) is
 * `undefined`, which the ingest route turns into a 400.
 *
 * @example
 *   stringField(JSON.parse('{"run_id":"0190f5c2"}'), 'run_id') // '0190f5c2'
 *   stringField(JSON.parse('{"run_id":42}'), 'run_id')         // undefined
 */
export function stringField(json: unknown, name: string): string | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined
  const value = (json as Record<string, unknown>)[name]
  return typeof value === 'string' && value !== '' ? value : undefined
}

/** A header value that is present and non-empty, else `undefined`. */
export function headerValue(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}
