import { rmSync } from 'node:fs'
import { openRuntime, type Runtime } from '../../src/app/runtime.ts'
import { type Config, loadConfig } from '../../src/config.ts'
import { tempDir } from './temp.ts'

export function tempDataDir(): string {
  return tempDir('auth-test')
}

export async function openTestRuntime(
  dataDir = tempDataDir(),
  env: Record<string, string> = {},
): Promise<{ runtime: Runtime; config: Config; dataDir: string; cleanup(): Promise<void> }> {
  const config = loadConfig({ DATA_DIR: dataDir, ...env })
  const runtime = await openRuntime(config)
  return {
    runtime,
    config,
    dataDir,
    cleanup: async () => {
      await runtime.close()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
