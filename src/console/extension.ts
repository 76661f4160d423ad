/**
 * The console: the relay's own web page (README "Console"), served from the
 * files `npm run build` puts in dist/console, plus its JSON endpoints (api.ts).
 * `console.enabled: false` switches the page off; the endpoints stay, as
 * part of the read API.
 */
import type { Component, Extension } from '../extension.js'
import type { RouteHandler } from '../http/front.js'
import { sendError } from '../http/respond.js'
import { registerConsoleApi } from './api.js'
import { BUILT_DIR, sendStatic, StaticFiles } from './static-files.js'

export interface ConsoleOptions {
  /** Where the built files are (default: the package's dist/console). */
  dir?: string
}

export function consoleExtension(opts: ConsoleOptions = {}): Extension {
  return (host): Component => {
    registerConsoleApi(host)
    const { enabled, path } = host.config.console
    if (!enabled) return { name: 'console', close() {} }
    const files = StaticFiles.load(opts.dir ?? BUILT_DIR, path)
    if (!files) {
      host.log.warn({ dir: opts.dir ?? BUILT_DIR }, 'the console is not built (run npm run build); its page answers 503')
      const notBuilt: RouteHandler = (_req, res) =>
        sendError(res, 'HOOKRELAY_CONSOLE_NOT_BUILT', 'the console page was not built; run npm run build')
      host.route('GET', path, notBuilt)
      host.route('GET', `${path}/`, notBuilt)
      return { name: 'console', close() {} }
    }
    host.route('GET', path, (req, res) => sendStatic(req, res, files.index))
    host.route('GET', `${path}/`, (req, res) => sendStatic(req, res, files.index))
    for (const [name, f] of files.assets) host.route('GET', `${path}/assets/${name}`, (req, res) => sendStatic(req, res, f))
    return { name: 'console', close() {} }
  }
}
