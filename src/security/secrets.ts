/** Server secrets kept as files in `<dataDir>/keys` (mode 0600), created on first start. */
import { randomBytes } from 'node:crypto'
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'

export function loadOrCreateSecret(dataDir: string, name: string, bytes = 32): Uint8Array {
  const dir = join(dataDir, 'keys')
  const path = join(dir, `${name}.key`)
  if (existsSync(path)) {
    const secret = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64')
    if (secret.length !== bytes)
      throw new Error(`${path} does not hold a ${bytes}-byte base64 secret; refusing to replace it`)
    return secret
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const secret = randomBytes(bytes)
  const temp = `${path}.${process.pid}.tmp`
  const fd = openSync(temp, 'w', 0o600)
  try {
    writeFileSync(fd, secret.toString('base64'))
    fsyncSync(fd) // on disk before the rename makes it the secret: a power cut must not lose it
  } finally {
    closeSync(fd)
  }
  chmodSync(temp, 0o600)
  renameSync(temp, path)
  return secret
}
