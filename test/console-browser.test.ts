/**
 * The console in a real browser: Debian's chromium driven by playwright-core
 * (never a downloaded browser). Screenshots of each view land in
 * test/artifacts/console/ (git-ignored).
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { consoleExtension } from '../src/console/extension.js'
import { fanoutExtension } from '../src/fanout/hub.js'
import { signGithub } from '../src/verify/sign.js'
import { post, postRunflow, startTestRelay, TOKEN, TOKEN_GH } from './helpers/relay.js'
import { connect } from './helpers/ws-conn.js'
import { nextAttempt, OPERATOR_TOKEN, READER_TOKEN, startDestinationRelay, startHandler } from './destinations-harness.js'
import { setMirror } from '../src/mirror/run-part.js'
import { ensureConsoleBuilt } from './helpers/console-build.js'

const CHROMIUM = '/usr/bin/chromium'
const ROOT = join(import.meta.dirname, '..')
const SHOTS = join(ROOT, 'test', 'artifacts', 'console')
/** Guard on every wait: a view that never shows fails the test instead of hanging the file. */
const WAIT = 20_000

if (!existsSync(CHROMIUM)) {
  try {
    execFileSync('apt-get', ['install', '-y', 'chromium'], { stdio: 'ignore' })
  } catch {
    execFileSync('apt-get', ['update'], { stdio: 'ignore' })
    execFileSync('apt-get', ['install', '-y', 'chromium'], { stdio: 'ignore' })
  }
}
ensureConsoleBuilt()
mkdirSync(SHOTS, { recursive: true })

const extensions = () => [fanoutExtension(), consoleExtension()]
/** The test config with subscriber `app` made an operator (it may delete consumers). */
const operatorApp = (yaml: string): string => yaml.replace('sources: ["*"]', 'sources: ["*"]\n    role: operator')

async function browser(tt: { teardown(fn: () => unknown): void }): Promise<BrowserContext> {
  // Not t.testdir(): a second call in the same test would empty the relay's data_dir.
  const profile = mkdtempSync(join(tmpdir(), 'hookrelay-chromium-'))
  tt.teardown(() => rmSync(profile, { recursive: true, force: true }))
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1100, height: 800 },
    timeout: WAIT,
  })
  ctx.setDefaultTimeout(WAIT)
  tt.teardown(() => ctx.close())
  return ctx
}

/** Page errors and CSP violations fail the test that sees them. */
function watch(tt: { fail(message: string): void }, page: Page): void {
  page.on('pageerror', (err) => tt.fail(`page error: ${err.message}`))
  page.on('console', (m) => {
    // Answers like 401 and 404 are logged by the browser; so is the stream's socket while the relay is down.
    if (m.type() === 'error' && !/Failed to load resource|ERR_CONNECTION_REFUSED/.test(m.text())) tt.fail(`console error: ${m.text()}`)
  })
}

async function signIn(page: Page, base: string, token: string): Promise<void> {
  await page.goto(`${base}/console`)
  await page.getByLabel('Subscriber token').fill(token)
  await page.getByRole('button', { name: 'Sign in' }).click()
}

function callback(runId: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    event: 'run.completed',
    run_id: runId,
    status: 'succeeded',
    output: { image_urls: [`https://storage.example/outputs/${runId}/image-0.png`] },
    ...extra,
  })
}

/** The seqs in the tail, as shown (newest first). */
async function tailSeqs(page: Page): Promise<number[]> {
  return page.$$eval('.tail a.row', (rows) => rows.map((r) => Number(r.getAttribute('data-seq'))))
}

async function waitForSeqs(page: Page, seqs: number[]): Promise<void> {
  try {
    await page.waitForFunction(
      (want) =>
        JSON.stringify([...(globalThis as any).document.querySelectorAll('.tail a.row')].map((r: any) => Number(r.getAttribute('data-seq')))) ===
        JSON.stringify(want),
      seqs,
      { timeout: WAIT },
    )
  } catch (err) {
    await shot(page, `failed-${seqs.join('-') || 'none'}`)
    throw new Error(`the tail shows ${JSON.stringify(await tailSeqs(page))}, not ${JSON.stringify(seqs)}`, { cause: err })
  }
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })
}

t.test('tail, inspector, revisions, run lookup, consumers, stats, restart', async (t) => {
  const dir = t.testdir()
  let { relay, base } = await startTestRelay(t, { dir, relay: { extensions: extensions() }, edit: operatorApp })
  const port = relay.port
  const ctx = await browser(t)
  const page = await ctx.newPage()
  watch(t, page)

  await page.goto(`${base}/console`)
  await shot(page, '01-sign-in')
  await signIn(page, base, TOKEN)
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor()

  // Posted in order, shown in order (newest first).
  for (const id of ['run-a', 'run-b', 'run-c']) t.equal((await postRunflow(base, callback(id))).status, 200)
  await waitForSeqs(page, [3, 2, 1])
  t.same(
    await page.$$eval('.tail a.row .key', (r) => r.map((x) => x.textContent)),
    ['run-c', 'run-b', 'run-a'],
    'keys in order',
  )

  // Filters: by key, by event glob, then cleared.
  await page.getByLabel('Key').fill('run-b')
  await waitForSeqs(page, [2])
  await page.getByLabel('Key').fill('')
  await page.getByLabel('Event glob').fill('batch.*')
  await waitForSeqs(page, [])
  await page.getByLabel('Event glob').fill('run.*')
  await waitForSeqs(page, [3, 2, 1])

  // Pause holds new events back; resume shows them.
  await page.getByRole('button', { name: 'Pause' }).click()
  t.equal((await postRunflow(base, callback('run-d'))).status, 200)
  await page.getByText('Paused: 1 newer event held').waitFor()
  t.same(await tailSeqs(page), [3, 2, 1], 'paused tail unchanged')
  await page.getByRole('button', { name: 'Resume' }).click()
  await waitForSeqs(page, [4, 3, 2, 1])
  await shot(page, '02-tail')

  // Keyboard: the rows are links; Enter on one opens the inspector.
  await page.locator('.tail a.row[data-seq="2"]').focus()
  await page.keyboard.press('Enter')
  await page.getByRole('heading', { name: 'Event #2' }).waitFor()
  await page.getByRole('rowheader', { name: 'runflow-signature' }).waitFor()
  t.match(await page.locator('pre.body').textContent(), /"run_id": "run-b"/, 'pretty-printed body')
  await page.getByRole('button', { name: 'Raw' }).click()
  t.equal(await page.locator('pre.body').textContent(), callback('run-b'), 'raw body byte for byte')
  await shot(page, '03-inspector')

  // Jump to an event by seq from the tail.
  await page.getByRole('link', { name: 'Tail' }).click()
  await page.getByLabel('Jump to seq').fill('3')
  await page.getByRole('button', { name: 'Open' }).click()
  await page.getByRole('heading', { name: 'Event #3' }).waitFor()
  await page.getByRole('link', { name: 'run-c' }).waitFor()

  // A redelivery with another body is revision 2, shown next to revision 1.
  t.equal((await postRunflow(base, callback('run-b', { status: 'failed', error: 'out of memory' }))).status, 200)
  await page.goto(`${base}/console#/event/5`)
  await page.getByRole('heading', { name: 'Event #5' }).waitFor()
  const diff = page.getByRole('table', { name: 'Differences between revision 1 and revision 2' })
  await diff.waitFor()
  t.match(await diff.locator('th').allTextContents(), ['Revision 1 (#2)', 'Revision 2 (#5)'])
  t.match(await diff.locator('td.removed').allTextContents(), [/removed: .*"status": "succeeded"/])
  t.ok((await diff.locator('td.added').allTextContents()).some((x) => /"error": "out of memory"/.test(x)), 'added line shown')
  await shot(page, '04-revisions')

  // Run lookup by id.
  await page.getByRole('link', { name: 'Runs' }).click()
  await page.getByLabel('Run id').fill('run-b')
  await page.getByRole('button', { name: 'Look up' }).click()
  await page.getByRole('heading', { name: 'runflow / run-b' }).waitFor()
  t.equal(await page.locator('.run .status').first().textContent(), 'failed')
  await page.getByRole('link', { name: 'revision 2 (#5)' }).waitFor()
  await page.getByRole('link', { name: 'revision 1 (#2)' }).waitFor()
  await shot(page, '05-run')
  await page.goto(`${base}/console#/runs/runflow/no-such-run`)
  await page.getByText('No run no-such-run from runflow that this token may read.').waitFor()

  // Consumers: a connected one cannot be deleted (409); once it is gone it can.
  const c = await connect(t, `ws://127.0.0.1:${port}/v1/stream`, TOKEN)
  await c.next()
  c.send({ type: 'subscribe', after: 0, consumer: 'billing', ack: true })
  await c.next()
  const first = await c.next()
  c.send({ type: 'ack', seq: first.seq })
  await page.getByRole('link', { name: 'Consumers' }).click()
  const row = page.locator('tr[data-consumer="app/billing"]')
  await row.waitFor()
  t.equal(await row.locator('td').nth(2).textContent(), 'yes', 'shown connected')
  await page.getByRole('button', { name: 'Delete consumer app/billing' }).click()
  await page.getByRole('button', { name: 'Confirm delete' }).click()
  await page.getByText('app/billing is connected right now: stop it first, then delete it.').waitFor()
  await shot(page, '06-consumers')
  c.ws.close()
  t.not((await c.end()).code, 0, 'the consumer disconnected')
  await page.getByRole('button', { name: 'Refresh' }).click()
  await page.waitForFunction(() => (globalThis as any).document.querySelector('tr[data-consumer="app/billing"] td:nth-of-type(3)')?.textContent === 'no', undefined, { timeout: WAIT })
  t.equal(await row.locator('td').nth(0).textContent(), '1', 'acked seq kept after disconnect')
  // By keyboard: Enter on Delete, and focus is on Confirm for the second Enter.
  await page.getByRole('button', { name: 'Delete consumer app/billing' }).focus()
  await page.keyboard.press('Enter')
  await page.waitForFunction(() => (globalThis as any).document.activeElement?.textContent === 'Confirm delete', undefined, { timeout: WAIT })
  await page.keyboard.press('Enter')
  await page.getByText('Deleted consumer app/billing.').waitFor()
  await page.getByText('No durable consumers.').waitFor()
  t.equal(await relay.journal.getCursor('app/billing'), undefined, 'gone from the journal')

  // Stats: charts from /v1/console/stats, drawn once two samples are in.
  await page.getByRole('link', { name: 'Stats' }).click()
  await page.getByRole('img', { name: /Ingest rate over the last 1 samples/ }).waitFor()
  t.equal(await page.locator('.chart canvas').count(), 3, 'three charts')
  for (const id of ['run-s1', 'run-s2']) t.equal((await postRunflow(base, callback(id))).status, 200)
  await page.getByText('7 callbacks accepted since start').waitFor()
  await page.getByText(/Mean ack latency: \d+\.\d+ ms/).waitFor()
  await page.getByRole('img', { name: /Ingest rate over the last 3 samples/ }).waitFor()
  await shot(page, '07-stats')

  // Stop the relay: the page says so; restart it on the same data_dir and port: the tail resumes without a gap.
  await page.getByRole('link', { name: 'Tail' }).click()
  await waitForSeqs(page, [7, 6, 5, 4, 3, 2, 1])
  await relay.close()
  await page.getByRole('status').filter({ hasText: 'Disconnected' }).waitFor()
  await shot(page, '08-disconnected')
  ;({ relay, base } = await startTestRelay(t, { dir, relay: { extensions: extensions() }, edit: (y) => operatorApp(y).replace('port: 0', `port: ${port}`) }))
  t.equal((await postRunflow(base, callback('run-e'))).status, 200)
  t.equal((await postRunflow(base, callback('run-f'))).status, 200)
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor()
  await waitForSeqs(page, [9, 8, 7, 6, 5, 4, 3, 2, 1])
  await shot(page, '09-resumed')

  // Phone-sized screen: nothing wider than the viewport.
  await page.setViewportSize({ width: 390, height: 844 })
  await waitForSeqs(page, [9, 8, 7, 6, 5, 4, 3, 2, 1])
  t.ok(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth <= (globalThis as any).innerWidth), 'no horizontal scroll at 390 px')
  await shot(page, '10-phone-tail')
  await page.goto(`${base}/console#/event/5`)
  await page.getByRole('table', { name: 'Differences between revision 1 and revision 2' }).waitFor()
  t.ok(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth <= (globalThis as any).innerWidth), 'inspector fits at 390 px')
  await shot(page, '11-phone-inspector')
})

t.test('a wrong token gets a clear message; a token limited to one source sees only it', async (t) => {
  const { base } = await startTestRelay(t, { relay: { extensions: extensions() } })
  t.equal((await postRunflow(base, callback('hidden-run'))).status, 200)
  const gh = JSON.stringify({ action: 'opened', number: 7 })
  const ghAnswer = await post(`${base}/webhook/github`, gh, { ...signGithub('gh-secret', gh), 'x-github-event': 'issues', 'x-github-delivery': 'delivery-7' })
  t.equal(ghAnswer.status, 200)
  const ctx = await browser(t)
  const page = await ctx.newPage()
  watch(t, page)

  await signIn(page, base, 'hr_not_a_token')
  await page.getByRole('alert').filter({ hasText: 'This token is not accepted by the relay' }).waitFor()
  t.equal(await page.evaluate(() => (globalThis as any).sessionStorage.length), 0, 'a refused token is not kept')
  await shot(page, '12-wrong-token')

  await page.getByLabel('Subscriber token').fill(TOKEN_GH)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor()
  await waitForSeqs(page, [2])
  t.same(await page.$$eval('.tail a.row .source', (r) => r.map((x) => x.textContent)), ['gh'])
  t.same(await page.$$eval('select[name="source"] option', (o) => o.map((x) => x.textContent)), ['All sources', 'gh'], 'only its sources offered')
  await shot(page, '13-limited-token')
  await page.goto(`${base}/console#/event/1`)
  await page.getByText('No event 1 that this token may read.').waitFor()
  await page.goto(`${base}/console#/runs/runflow/hidden-run`)
  await page.getByText('No run hidden-run from runflow that this token may read.').waitFor()

  // The token survives a reload of the page (sessionStorage), and signing out forgets it.
  await page.goto(`${base}/console#/tail`)
  await waitForSeqs(page, [2])
  await page.getByRole('button', { name: 'Sign out' }).click()
  await page.getByLabel('Subscriber token').waitFor()
  t.equal(await page.evaluate(() => (globalThis as any).sessionStorage.length), 0)
})

t.test('destinations: attempts and a dead letter, replayed by an operator; a reader sees no actions', async (t) => {
  // Refuses at first: three attempts (the schedule has two steps), then a dead letter.
  const h = await startHandler(t, () => ({ status: 500 }))
  const dest = `destinations:
  app:
    url: ${h.url}?key=hidden-credential
    sources: [runflow]
    retry: { schedule: [50ms, 50ms], jitter: 0, max_age: 1m }
`
  const { base, worker } = await startDestinationRelay(t, dest, { extensions: extensions() })
  const plain = await startTestRelay(t, { relay: { extensions: extensions() } })
  const dead = nextAttempt(worker(), (a) => a.outcome === 'dead')
  t.equal((await postRunflow(base, callback('run-dest'))).status, 200)
  t.equal((await dead).seq, 1, 'seq 1 dead-lettered')
  const ctx = await browser(t)
  const page = await ctx.newPage()
  watch(t, page)

  // A relay without destinations has no menu entry for them.
  await signIn(page, plain.base, TOKEN)
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor()
  await page.getByRole('link', { name: 'Stats' }).waitFor()
  t.equal(await page.getByRole('link', { name: 'Destinations' }).count(), 0, 'no menu entry while the API answers 404')
  await page.getByRole('button', { name: 'Sign out' }).click()

  await signIn(page, base, OPERATOR_TOKEN)
  await page.getByRole('link', { name: 'Destinations' }).click()
  const row = page.locator('tr[data-destination="app"]')
  await row.waitFor()
  t.same(await row.locator('td').allTextContents(), [`${h.url}`, 'delivering', '0', '1'], 'url without its query, state, lag, dead letters')
  t.equal(await page.getByText('hidden-credential').count(), 0, 'the query is not shown')
  await shot(page, '15-destinations')

  await row.getByRole('link', { name: 'app' }).click()
  await page.getByRole('heading', { name: 'Destination app' }).waitFor()
  const attempts = page.locator('table.attempts tbody tr')
  await attempts.nth(2).waitFor()
  // Cells: time, seq, attempt, status, latency, error, outcome, next attempt.
  const cells = await attempts.evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((c) => c.textContent ?? '')))
  t.same(
    cells.map((c) => [c[1], c[2], c[3], c[5], c[6]]),
    [
      ['#1', '3', '500', 'status 500', 'dead'],
      ['#1', '2', '500', 'status 500', 'retry'],
      ['#1', '1', '500', 'status 500', 'retry'],
    ],
    'three attempts, newest first, each refused with 500',
  )
  t.equal(cells[0]![7], '—', 'no next attempt after the last')
  t.match(await attempts.locator('td:nth-of-type(5)').allTextContents(), Array(3).fill(/^\d+(\.\d)? ms$/), 'latency in ms')
  t.match(await attempts.nth(2).locator('td').nth(7).textContent(), /^\d{1,2}:\d\d:\d\d$/, 'a retried attempt names the time of its next one, which has passed')
  const deadRow = page.locator('table.dead tr[data-seq="1"]')
  await deadRow.waitFor()
  const deadCells = await deadRow.locator('td').allTextContents()
  t.same([deadCells[0], deadCells[1], deadCells[3]], ['runflow run.completed', 'run-dest', '3'], 'event, key and its three attempts')
  t.match(deadCells[4], /^3 attempts, the retry schedule's end \(last: status 500\)$/, 'why it was given up')
  await shot(page, '16-destination-dead-letter')

  // The handler accepts now; Replay dead letters, by keyboard: Enter, then Enter on Confirm (focus moves to it).
  h.script = () => ({ status: 200 })
  const got = h.next()
  await page.getByRole('button', { name: 'Replay dead letters' }).focus()
  await page.keyboard.press('Enter')
  await page.getByText('Send the 1 dead letter of app again?').waitFor()
  await page.waitForFunction(() => (globalThis as any).document.activeElement?.textContent === 'Confirm', undefined, { timeout: WAIT })
  await shot(page, '17-destination-confirm')
  await page.keyboard.press('Enter')
  t.equal((await got).body.toString(), callback('run-dest'), 'the handler received the dead letter, byte for byte')
  await page.getByText('Queued the dead letters for delivery.').waitFor()
  await page.getByText('No dead letters.').waitFor()
  await page.locator('table.attempts tbody tr[data-attempt="4"] td.o-delivered').waitFor()
  t.same(await attempts.nth(0).locator('td').nth(3).textContent(), '200', 'the newest attempt is the delivery')
  await shot(page, '18-destination-replayed')

  // Replay from a seq, then Pause and Resume, each confirmed.
  const again = h.next()
  await page.getByLabel('From seq').fill('1')
  await page.getByRole('button', { name: 'Replay from seq' }).click()
  await page.getByText('Send #1 and every event after it to app again?', { exact: false }).waitFor()
  await page.getByRole('button', { name: 'Confirm' }).click()
  t.equal((await again).headers['hookrelay-seq'], '1', 'seq 1 sent again')
  await page.getByText('Delivering again from #1.').waitFor()
  await page.getByRole('button', { name: 'Pause' }).click()
  await page.getByRole('button', { name: 'Cancel' }).click()
  t.equal(worker().summary().paused, false, 'cancel leaves it delivering')
  await page.getByRole('button', { name: 'Pause' }).click()
  await page.getByRole('button', { name: 'Confirm' }).click()
  await page.getByText('paused (operator)').waitFor()
  t.equal(worker().summary().paused, true, 'paused on the relay')
  await page.getByRole('button', { name: 'Resume' }).click()
  await page.getByRole('button', { name: 'Confirm' }).click()
  await page.locator('dd .d-delivering').waitFor()
  t.equal(worker().summary().paused, false, 'resumed on the relay')

  // A reader's token reads the same view without any action.
  const reader = await ctx.newPage()
  watch(t, reader)
  await signIn(reader, base, READER_TOKEN)
  await reader.getByRole('status').filter({ hasText: 'Live' }).waitFor()
  await reader.goto(`${base}/console#/destinations/app`)
  await reader.getByRole('heading', { name: 'Destination app' }).waitFor()
  await reader.locator('table.attempts tbody tr').first().waitFor()
  await reader.getByText('Replay, pause and resume need an operator’s token.').waitFor()
  t.equal(await reader.getByRole('button', { name: /Replay|Pause|Resume|Confirm/ }).count(), 0, 'no action buttons for a reader')
  await shot(reader, '19-destination-reader')
  await reader.setViewportSize({ width: 390, height: 844 })
  await reader.locator('table.attempts tbody tr').first().waitFor()
  t.ok(await reader.evaluate(() => (globalThis as any).document.documentElement.scrollWidth <= (globalThis as any).innerWidth), 'fits at 390 px')
  await shot(reader, '20-phone-destination')
})

t.test('run lookup shows each mirror object with its state and error', async (t) => {
  const { relay, base } = await startTestRelay(t, { relay: { extensions: extensions() } })
  t.equal((await postRunflow(base, callback('run-m'))).status, 200)
  // The mirror worker's own kind of entry, so the run row carries object states as a real mirror leaves them.
  const body = JSON.stringify({ event: 'mirror.failed', run_id: 'run-m' })
  await relay.journal.appendInternal({
    source: 'runflow',
    event: 'mirror.failed',
    key: 'run-m',
    body: Buffer.from(body),
    receivedAt: Date.now(),
    json: JSON.parse(body),
    updateRow: (row) => {
      setMirror(row, {
        state: 'failed',
        objects: [
          { index: 0, url: 'https://storage.example/outputs/run-m/image-0.png', state: 'completed', bucket: 'outputs', key: 'runflow/run-m/0.png', size: 2048, sha256: 'ab'.repeat(32), content_type: 'image/png' },
          { index: 1, url: 'https://storage.example/outputs/run-m/image-1.png', state: 'failed', reason: { code: 'HOOKRELAY_MIRROR_ORIGIN_STATUS', message: 'the origin answered 403' } },
        ],
      })
    },
  })
  const ctx = await browser(t)
  const page = await ctx.newPage()
  watch(t, page)
  await signIn(page, base, TOKEN)
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor()
  await page.goto(`${base}/console#/runs/runflow/run-m`)
  await page.getByRole('heading', { name: 'runflow / run-m' }).waitFor()
  const rows = page.locator('.run tbody tr')
  await rows.nth(1).waitFor()
  t.same(await rows.nth(0).locator('td').allTextContents(), ['0', 'completed', 'https://storage.example/outputs/run-m/image-0.png', 'outputs/runflow/run-m/0.png (2.0 KiB)', ''])
  t.same(await rows.nth(1).locator('td').allTextContents(), ['1', 'failed', 'https://storage.example/outputs/run-m/image-1.png', '—', 'the origin answered 403 (HOOKRELAY_MIRROR_ORIGIN_STATUS)'])
  await shot(page, '14-run-mirror')
})
