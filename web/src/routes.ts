/** The view for the current URL hash, following hash changes. */
import { useEffect, useState } from 'preact/hooks'
import { parseRoute, type Route } from './logic.js'

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash))
  useEffect(() => {
    const on = (): void => setRoute(parseRoute(location.hash))
    addEventListener('hashchange', on)
    return () => removeEventListener('hashchange', on)
  }, [])
  return route
}
