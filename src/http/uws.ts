import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type * as UWS from 'uWebSockets.js'
import { RelayError } from '../errors.js'

const require = createRequire(import.meta.url)

/**
 * Loads uWebSockets.js's native binary directly. The package's own entry
 * quietly falls back to a slow pure-JS server when the binary does not load;
 * an appliance chosen for speed must refuse to start instead.
 *
 * @throws RelayError HOOKRELAY_UWS_NATIVE with the platform and what to do.
 */
export function loadUws(): typeof UWS {
  const pkgDir = dirname(require.resolve('uWebSockets.js/package.json'))
  const name = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`
  try {
    return require(join(pkgDir, 'binaries', name)) as typeof UWS
  } catch (cause) {
    throw new RelayError(
      'HOOKRELAY_UWS_NATIVE',
      `uWebSockets.js has no working native binary for Node ${process.version} on ${process.platform}-${process.arch} ` +
        `(ABI ${process.versions.modules}, looked for ${name}): ${(cause as Error).message.split('\n')[0]}. ` +
        'hookrelay runs on Node 20 on linux x64, arm64 or armv7 with glibc >= 2.27: install Node 20 and run `npm ci` again.',
      { cause },
    )
  }
}

export const uws = loadUws()
export type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, WebSocketBehavior, us_listen_socket } from 'uWebSockets.js'
