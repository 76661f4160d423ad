/**
 * First-start secrets: when a source has no secret or a subscriber no token,
 * `hookrelay serve` generates one and keeps it in
 * `<data_dir>/generated-secrets.json` (mode 0600), so `npm start` works at once
 * and `hookrelay send` / `hookrelay tail` can find the same values later.
 * Values are never logged; callers log the file path.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { RelayError } from '../errors.js'
import { prepareDataDir } from '../journal/data-dir.js'
import { deepFreeze } from './load.js'
import type { Config, SourceConfig, SubscriberConfig } from './types.js'

export const GENERATED_SECRETS_FILE = 'generated-secrets.json'

/** What `generated-secrets.json` holds: source name → secret, subscriber name → token. */
export interface GeneratedSecrets {
  version: 1
  sources: Record<string, string>
  subscribers: Record<string, string>
}

/** Name of the subscriber added when the config lists none. */
export const DEFAULT_SUBSCRIBER = 'default'

export function generatedSecretsPath(dataDir: string): string {
  return join(dataDir, GENERATED_SECRETS_FILE)
}

/**
 * Reads `<dataDir>/generated-secrets.json`; `null` when it does not exist.
 *
 * @throws {RelayError} `HOOKRELAY_CONFIG_GENERATED_INVALID` when it exists but is
 *   unreadable or malformed (it is never overwritten silently: senders may use its values).
 * @example
 *   const token = config.subscribers[0]?.token || readGeneratedSecrets(config.data_dir)?.subscribers.app
 */
export function readGeneratedSecrets(dataDir: string): GeneratedSecrets | null {
  const file = generatedSecretsPath(dataDir)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw invalid(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err)
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw invalid(file, 'is not JSON', err)
  }
  if (!isRecord(data) || data.version !== 1 || !isStringMap(data.sources) || !isStringMap(data.subscribers)) {
    throw invalid(file, 'does not hold {"version":1,"sources":{...},"subscribers":{...}}')
  }
  return { version: 1, sources: { ...data.sources }, subscribers: { ...data.subscribers } }
}

/**
 * Fills in every missing source secret and subscriber token from
 * `generated-secrets.json`, generating (and storing) the ones it lacks, and adds
 * a `default` subscriber (`sources: ["*"]`) when none is configured. Call at
 * `serve` start, not from `check-config`.
 *
 * @returns the (new, frozen) config and, when anything was filled in, the file
 *   and the names filled; `generated` is `null` when the config needed nothing.
 * @example
 *   const { config, generated } = ensureGeneratedSecrets(loadConfig(file))
 *   if (generated) log.info({ file: generated.file }, 'using generated secrets')
 */
export function ensureGeneratedSecrets(config: Config): {
  config: Config
  generated: { file: string; sources: string[]; subscribers: string[] } | null
} {
  const needSources = Object.values(config.sources).filter(lacksSecret).map((s) => s.name)
  const needSubscribers = config.subscribers.filter((s) => s.token === '').map((s) => s.name)
  const addDefault = config.subscribers.length === 0
  if (addDefault) needSubscribers.push(DEFAULT_SUBSCRIBER)
  if (needSources.length === 0 && needSubscribers.length === 0) return { config, generated: null }

  const file = generatedSecretsPath(config.data_dir)
  const stored = readGeneratedSecrets(config.data_dir) ?? { version: 1, sources: {}, subscribers: {} }
  let changed = false
  for (const name of needSources) {
    if (!Object.hasOwn(stored.sources, name) || stored.sources[name] === '') {
      stored.sources[name] = `whsec_${randomBytes(24).toString('base64')}`
      changed = true
    }
  }
  for (const name of needSubscribers) {
    if (!Object.hasOwn(stored.subscribers, name) || stored.subscribers[name] === '') {
      stored.subscribers[name] = `hr_${randomBytes(24).toString('base64url')}`
      changed = true
    }
  }
  if (changed) {
    prepareDataDir(config.data_dir)
    writeAtomically(file, `${JSON.stringify(stored, null, 2)}\n`)
  } else {
    restrictMode(file)
  }

  const next = structuredClone(config) as Config
  for (const name of needSources) {
    const source = next.sources[name] as SourceConfig
    source.verify.secrets = [stored.sources[name] as string]
  }
  // The only token on a box nobody configured: it may manage too (the console's delete and replay).
  if (addDefault) next.subscribers.push({ name: DEFAULT_SUBSCRIBER, token: '', sources: ['*'], role: 'operator' })
  for (const sub of next.subscribers as SubscriberConfig[]) {
    if (sub.token === '') sub.token = stored.subscribers[sub.name] as string
  }
  return { config: deepFreeze(next), generated: { file, sources: needSources, subscribers: needSubscribers } }
}

function lacksSecret(s: SourceConfig): boolean {
  // A standard-webhooks source verifying v1a signatures with public keys needs no shared secret.
  return s.verify.secrets.length === 0 && (s.verify.scheme !== 'standard-webhooks' || s.verify.public_keys.length === 0)
}

/** tmp + fsync + rename + fsync(dir): readers see the old file or the new one, never half of one. */
function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  try {
    const fd = openSync(tmp, 'wx', 0o600)
    try {
      writeSync(fd, text)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, file)
  } catch (err) {
    try {
      unlinkSync(tmp)
    } catch {
      // The tmp file was never created or is already gone.
    }
    throw new RelayError('HOOKRELAY_CONFIG_GENERATED_WRITE', `cannot write ${file}: ${(err as Error).message}`, { cause: err })
  }
  const dir = openSync(join(file, '..'), 'r')
  try {
    fsyncSync(dir)
  } finally {
    closeSync(dir)
  }
}

function restrictMode(file: string): void {
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600)
}

function invalid(file: string, what: string, cause?: unknown): RelayError {
  return new RelayError(
    'HOOKRELAY_CONFIG_GENERATED_INVALID',
    `${file} ${what}; fix it, or delete it to generate new values (senders and subscribers then need the new ones)`,
    { cause },
  )
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isStringMap(v: unknown): v is Record<string, string> {
  return isRecord(v) && Object.values(v).every((x) => typeof x === 'string')
}
