import { consoleExtension } from './console/extension.js'
import { destinationsExtension } from './destinations/index.js'
import { ConfigError, loadConfig } from './config/load.js'
import { ensureGeneratedSecrets } from './config/generated.js'
import type { Config } from './config/types.js'
import { RelayError } from './errors.js'
import { fanoutExtension } from './fanout/hub.js'
import type { Logger } from './log.js'
import { mirrorExtension } from './mirror/worker.js'
import { Relay, type RelayOptions } from './relay.js'

export interface ApplianceOptions {
  logger?: Logger
  /** The file the config came from, for SIGHUP reloads. */
  configFile?: string
  processMetrics?: boolean
  /** Retention knobs (tests). */
  retention?: RelayOptions['retention']
}

/**
 * The whole appliance as `hookrelay serve` runs it. Start order: journal →
 * mirror → hub → destinations → console → HTTP listen (retention starts with
 * the journal's owner, the relay); `close()` runs it in reverse.
 */
export async function startAppliance(config: Config, opts: ApplianceOptions = {}): Promise<Relay> {
  return Relay.start(config, {
    logger: opts.logger,
    processMetrics: opts.processMetrics,
    retention: opts.retention,
    extensions: [mirrorExtension(), fanoutExtension(), destinationsExtension(), consoleExtension()],
  })
}

export type ReloadResult = 'ok' | 'invalid' | 'refused'

/**
 * What SIGHUP does: re-reads `file`, fills in generated secrets as at start,
 * and hands the result to `relay.reload`. Never throws: a file that fails
 * validation, or a change that needs a restart, is logged and refused, and the
 * running config stays. Sets `hookrelay_config_reload_last_success` and counts
 * `hookrelay_config_reloads_total{result}`.
 */
export function reloadFromFile(relay: Relay, file: string): ReloadResult {
  const { log, metrics } = relay
  const result = ((): ReloadResult => {
    let next: Config
    try {
      next = ensureGeneratedSecrets(loadConfig(file)).config
    } catch (err) {
      const problems = err instanceof ConfigError ? err.format().split('\n') : [(err as Error).message]
      log.error({ file, problems }, 'config reload refused: the file is not valid; the running config stays')
      return 'invalid'
    }
    try {
      const { changed } = relay.reload(next)
      log.info({ file, changed }, 'config reloaded')
      return 'ok'
    } catch (err) {
      const code = err instanceof RelayError ? err.code : 'error'
      log.error({ file, code, reason: (err as Error).message }, 'config reload refused; the running config stays')
      return code === 'HOOKRELAY_CONFIG_RESTART_REQUIRED' ? 'refused' : 'invalid'
    }
  })()
  metrics.reloads.labels(result).inc()
  metrics.reloadLastSuccess.set(result === 'ok' ? 1 : 0)
  return result
}
