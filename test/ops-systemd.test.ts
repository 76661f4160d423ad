// Runs scripts/check-systemd.sh: `systemd-analyze verify` of
// systemd/hookrelay.service, `systemd-analyze security --offline=true` at or
// below 3.0, and check-config of the unit's example config. Where
// systemd-analyze is missing, it is installed from Debian when this runs as
// root with apt-get (bounded in time); otherwise the test is skipped and says why.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'

const SCRIPT = join(import.meta.dirname, '..', 'scripts', 'check-systemd.sh')

function haveAnalyze(): boolean {
  return spawnSync('sh', ['-c', 'command -v systemd-analyze'], { stdio: 'ignore' }).status === 0
}

function canInstall(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux'
  if (process.getuid?.() !== 0) return 'not root, so apt-get install systemd cannot run'
  if (spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status !== 0) return 'no apt-get on this machine'
  return undefined
}

const cannot = haveAnalyze() ? undefined : canInstall()

// Run once, outside the test, so that an install failure can become a skip reason.
const run = cannot === undefined
  ? spawnSync('bash', [SCRIPT], { env: { ...process.env, INSTALL_SYSTEMD: '1' }, encoding: 'utf8', timeout: 240_000 })
  : undefined
const skip = cannot !== undefined ? `systemd-analyze missing and ${cannot}` : run?.status === 77 ? run.stdout.trim() : false

t.test('systemd unit: verify, security exposure <= 3.0, example config valid', { skip }, async (t) => {
  const r = run!
  if (r.status !== 0) t.comment(`${r.stdout}\n${r.stderr}`)
  t.equal(r.status, 0, 'scripts/check-systemd.sh passes')
  const score = /exposure: ([\d.]+)/.exec(r.stdout)?.[1]
  t.ok(score !== undefined && Number(score) <= 3.0, `exposure ${score}`)
  t.match(r.stdout, /systemd\/hookrelay\.yaml: ok/)
  t.comment(`systemd-analyze security exposure: ${score}`)
})
