import type { Config } from './config/types.js'
import { fanoutExtension } from './fanout/hub.js'
import type { Logger } from './log.js'
import { mirrorExtension } from './mirror/worker.js'
import { Relay } from './relay.js'

export interface ApplianceOptions {
  logger?: Logger
  /** The file the config came from, for SIGHUP reloads. */
  configFile?: string
  processMetrics?: boolean
}

/**
 * The whole appliance as `hookrelay serve` runs it. Start order: journal →
 * mirror → hub → HTTP listen; `close()` runs it in reverse.
 */
export async function startAppliance(config: Config, opts: ApplianceOptions = {}): Promise<Relay> {
  return Relay.start(config, {
    logger: opts.logger,
    processMetrics: opts.processMetrics,
    extensions: [mirrorExtension(), fanoutExtension()],
  })
}
