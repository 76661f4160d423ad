import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { SubscriberConfig } from '../config/types.js'
import { sendError } from './respond.js'

/** A subscriber as the relay authorizes it. */
export interface Principal {
  name: string
  /** null = every source. */
  sources: ReadonlySet<string> | null
  /** `operator` may also manage consumers and destinations. */
  role: 'reader' | 'operator'
}

/**
 * Bearer-token lookup. Tokens are looked up by their sha256, so the lookup's
 * timing says nothing about how much of a guessed token was right.
 */
export class TokenBook {
  #byHash = new Map<string, Principal>()

  constructor(subscribers: readonly SubscriberConfig[]) {
    for (const s of subscribers) {
      if (s.token === '') continue
      this.#byHash.set(hash(s.token), {
        name: s.name,
        sources: s.sources.includes('*') ? null : new Set(s.sources),
        role: s.role,
      })
    }
  }

  /** The principal for a raw token, or undefined. */
  lookup(token: string | undefined): Principal | undefined {
    if (token === undefined || token === '') return undefined
    return this.#byHash.get(hash(token))
  }

  /** The principal for an `Authorization` header value (`Bearer <token>`). */
  fromHeader(authorization: string): Principal | undefined {
    return this.lookup(bearerToken(authorization))
  }
}

export function canRead(p: Principal, source: string): boolean {
  return p.sources === null || p.sources.has(source)
}

function hash(token: string): string {
  return createHash('sha256').update(token).digest('base64')
}

/** The token of an `Authorization: Bearer <token>` header value. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1]
}

/**
 * The principal of a request's bearer token; without a known token it
 * answers 401 `HOOKRELAY_API_UNAUTHORIZED` itself and returns undefined.
 * Every JSON API of the relay authorizes through this.
 */
export function authorize(
  req: IncomingMessage,
  res: ServerResponse,
  lookup: (token: string | undefined) => Principal | undefined,
): Principal | undefined {
  const who = lookup(bearerToken(req.headers.authorization))
  if (!who) {
    sendError(res, 'HOOKRELAY_API_UNAUTHORIZED', 'send Authorization: Bearer <subscriber token>', {
      headers: { 'www-authenticate': 'Bearer' },
    })
  }
  return who
}
