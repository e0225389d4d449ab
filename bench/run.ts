/**
 * `npm run bench`: every benchmark in turn, each in its own process so one does not warm or
 * load the next. Pass names to run some of them: `npm run bench -- store http`.
 */
import { spawnSync } from 'node:child_process'

const BENCHES: Record<string, string[]> = {
  store: ['bench/store.ts'],
  http: ['bench/http.ts'],
  enumeration: ['bench/enumeration.ts'],
  load: ['bench/load.ts', '--seconds', '60'],
}

const chosen = process.argv.slice(2)
const names = chosen.length > 0 ? chosen : Object.keys(BENCHES)
for (const name of names) {
  const args = BENCHES[name]
  if (!args) {
    console.error(`unknown bench "${name}"; known: ${Object.keys(BENCHES).join(', ')}`)
    process.exit(2)
  }
  console.log(`\n## ${name}: node ${args.join(' ')}\n`)
  const result = spawnSync(process.execPath, args, { stdio: 'inherit' })
  if (result.status !== 0) {
    console.error(`bench ${name} failed with exit code ${result.status}`)
    process.exit(1)
  }
}
