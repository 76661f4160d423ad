/**
 * `${VAR}` and `${VAR:-default}` in config strings, shell-style: `:-` takes the
 * default when the variable is unset or empty, so `${VAR:-}` is the empty
 * string. `$${` writes a literal `${`. Anything else (`$VAR`, a lone `$`) is
 * left as written.
 */

export type Env = Readonly<Record<string, string | undefined>>

export interface Interpolated {
  value: string
  /** True when the text held at least one `${...}` (so the value came from the environment). */
  substituted: boolean
  /** Variables referenced without a default that are not set, in order. */
  unset: string[]
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * Expands `${...}` references from `env`. Unset variables without a default
 * expand to nothing and are listed in `unset`, so the caller decides whether
 * that is an error. Malformed references throw an `Error` saying how to write
 * them.
 *
 * @example
 *   interpolate('${HOST:-localhost}:${PORT}', { PORT: '80' }).value  // 'localhost:80'
 *   interpolate('$${HOME}', {}).value                              // '${HOME}'
 */
export function interpolate(text: string, env: Env): Interpolated {
  const result: Interpolated = { value: '', substituted: false, unset: [] }
  let out = ''
  let i = 0
  for (;;) {
    const dollar = text.indexOf('$', i)
    if (dollar === -1) break
    if (text.startsWith('$${', dollar)) {
      out += text.slice(i, dollar) + '${'
      i = dollar + 3
      continue
    }
    if (!text.startsWith('${', dollar)) {
      out += text.slice(i, dollar + 1)
      i = dollar + 1
      continue
    }
    const close = text.indexOf('}', dollar + 2)
    if (close === -1) {
      throw new Error('unterminated "${"; close it with "}", or write "$${" for a literal "${"')
    }
    const inner = text.slice(dollar + 2, close)
    if (inner.includes('${')) {
      throw new Error(`nested "\${" in "\${${inner}}" is not supported; use one \${VAR:-default} with a literal default`)
    }
    const sep = inner.indexOf(':-')
    const name = sep === -1 ? inner : inner.slice(0, sep)
    const fallback = sep === -1 ? undefined : inner.slice(sep + 2)
    if (!NAME_RE.test(name)) {
      throw new Error(
        `"\${${inner}}" does not name a variable; write \${NAME} or \${NAME:-default} (letters, digits, _), or "$\${" for a literal "\${"`,
      )
    }
    const value = env[name]
    let expanded: string
    if (fallback !== undefined) {
      expanded = value === undefined || value === '' ? fallback : value
    } else if (value === undefined) {
      result.unset.push(name)
      expanded = ''
    } else {
      expanded = value
    }
    out += text.slice(i, dollar) + expanded
    result.substituted = true
    i = close + 1
  }
  result.value = out + text.slice(i)
  return result
}
