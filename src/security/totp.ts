// TOTP (RFC 6238: SHA1, 6 digits, 30 s) for 2FA, and single-use recovery codes stored as hashes.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { HOTP, Secret, TOTP } from 'otpauth'
import QRCode from 'qrcode'

const algorithm = 'SHA1'
const digits = 6
const periodSeconds = 30
const secretBytes = 20 // 160 bits: the length RFC 4226 recommends and authenticator apps expect
const codePattern = /^[0-9]{6}$/

export function generateTotpSecret(): string {
  return new Secret({ size: secretBytes }).base32 // otpauth draws from crypto.randomBytes
}

export type TotpUriInput = { issuer: string; account: string; secret: string }

export function totpUri({ issuer, account, secret }: TotpUriInput): string {
  return new TOTP({
    issuer,
    label: account,
    secret: Secret.fromBase32(secret),
    algorithm,
    digits,
    period: periodSeconds,
  }).toString()
}

export async function totpQrSvg(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: 'svg' })
}

export function totpStep(nowMs: number): number {
  return Math.floor(nowMs / 1000 / periodSeconds)
}

/**
 * Returns the time step the code belongs to (to be recorded as the new last used step), or null.
 * Accepts the current step and one either side for clock drift, but never a step at or before
 * `lastUsedStep`: a code that was accepted once, or an older one, cannot be replayed.
 */
export function verifyTotp(
  secret: string,
  code: string,
  nowMs: number,
  lastUsedStep: number | null,
): number | null {
  if (!codePattern.test(code)) return null
  const key = Secret.fromBase32(secret)
  const current = totpStep(nowMs)
  for (const step of [current - 1, current, current + 1]) {
    if (lastUsedStep !== null && step <= lastUsedStep) continue
    // window 0: exactly this counter; otpauth compares the codes in constant time.
    if (HOTP.validate({ token: code, secret: key, algorithm, digits, counter: step, window: 0 }) === 0)
      return step
  }
  return null
}

// RFC 4648 base32, lowercase: no 0/1/8/9, so nothing reads as o, l or b.
const recoveryAlphabet = 'abcdefghijklmnopqrstuvwxyz234567'
const recoveryGroups = 3
const recoveryGroupLength = 4 // 3 × 4 characters × 5 bits = 60 bits per code

export function generateRecoveryCodes(count = 10): string[] {
  return Array.from({ length: count }, generateRecoveryCode)
}

function generateRecoveryCode(): string {
  const bytes = randomBytes(recoveryGroups * recoveryGroupLength)
  // 256 is a multiple of 32, so keeping the low 5 bits of each byte is unbiased.
  const chars = Array.from(bytes, (byte) => recoveryAlphabet[byte & 31]).join('')
  return Array.from({ length: recoveryGroups }, (_, i) =>
    chars.slice(i * recoveryGroupLength, (i + 1) * recoveryGroupLength),
  ).join('-')
}

export function normalizeRecoveryCode(code: string): string {
  return code.toLowerCase().replace(/[\s-]/g, '')
}

export function hashRecoveryCode(code: string): string {
  return createHash('sha256').update(normalizeRecoveryCode(code)).digest('hex')
}

/** Index of the stored hash the code matches, or -1. Every hash is compared, in constant time. */
export function matchRecoveryCode(code: string, hashes: readonly string[]): number {
  const candidate = Buffer.from(hashRecoveryCode(code), 'hex')
  let found = -1
  hashes.forEach((hash, index) => {
    const stored = Buffer.from(hash, 'hex')
    if (stored.length === candidate.length && timingSafeEqual(stored, candidate) && found === -1)
      found = index
  })
  return found
}
