import type { Config } from './config/types.js'
import type { Logger } from './log.js'
import { Relay } from './relay.js'

export interface ApplianceOptions {
  logger?: Logger
  /** The file the config came from, for SIGHUP reloads. */
  configFile?: string
  processMetrics?: boolean
}

/**
 * The whole appliance as `hookrelay serve` runs it: journal → mirror → hub →
 * HTTP, closed in reverse.
 */
export async function startAppliance(config: Config, opts: ApplianceOptions = {}): Promise<Relay & { reload?: () => Promise<void> }> {
  return Relay.start(config, { logger: opts.logger, processMetrics: opts.processMetrics, extensions: [] })
}
