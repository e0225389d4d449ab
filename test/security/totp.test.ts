import { createHash, createHmac } from 'node:crypto'
import fc from 'fast-check'
import { Secret, TOTP, URI } from 'otpauth'
import { describe, expect, it } from 'vitest'
import {
  generateRecoveryCodes,
  generateTotpSecret,
  hashRecoveryCode,
  matchRecoveryCode,
  totpQrSvg,
  totpUri,
  verifyTotp,
} from '../../src/security/totp.ts'

// RFC 6238 appendix B / RFC 4226 appendix D shared secret: ASCII "12345678901234567890".
const rfcKey = Buffer.from('12345678901234567890', 'ascii')
const rfcSecret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'

// RFC 4226 section 5.3 (dynamic truncation), written out independently of otpauth.
function hotp(key: Buffer, counter: number, digits: number): string {
  const message = Buffer.alloc(8)
  message.writeBigUInt64BE(BigInt(counter))
  const mac = createHmac('sha1', key).update(message).digest()
  const offset = mac[mac.length - 1] & 0x0f
  const binary = mac.readUInt32BE(offset) & 0x7fffffff
  return String(binary % 10 ** digits).padStart(digits, '0')
}

const stepOf = (seconds: number): number => Math.floor(seconds / 30)

const rfc6238Sha1 = [
  { seconds: 59, code: '94287082' },
  { seconds: 1111111109, code: '07081804' },
  { seconds: 1111111111, code: '14050471' },
  { seconds: 1234567890, code: '89005924' },
  { seconds: 2000000000, code: '69279037' },
]

describe('RFC vectors', () => {
  it('the secret is the RFC key in base32', () => {
    expect(Secret.fromLatin1('12345678901234567890').base32).toBe(rfcSecret)
  })

  it.each(rfc6238Sha1)('otpauth with SHA1/30 s/8 digits gives $code at $seconds', ({ seconds, code }) => {
    const secret = Secret.fromBase32(rfcSecret)
    expect(
      TOTP.generate({ secret, algorithm: 'SHA1', digits: 8, period: 30, timestamp: seconds * 1000 }),
    ).toBe(code)
  })

  it('the independent HOTP matches RFC 4226 appendix D', () => {
    const expected = [
      '755224',
      '287082',
      '359152',
      '969429',
      '338314',
      '254676',
      '287922',
      '162583',
      '399871',
      '520489',
    ]
    expect(expected.map((_, counter) => hotp(rfcKey, counter, 6))).toEqual(expected)
  })

  it.each(rfc6238Sha1)('the independent HOTP gives $code at $seconds', ({ seconds, code }) => {
    expect(hotp(rfcKey, stepOf(seconds), 8)).toBe(code)
  })

  it.each(rfc6238Sha1)(
    'verifyTotp accepts the 6-digit code at $seconds and returns its step',
    ({ seconds }) => {
      const code = hotp(rfcKey, stepOf(seconds), 6)
      expect(verifyTotp(rfcSecret, code, seconds * 1000, null)).toBe(stepOf(seconds))
    },
  )
})

describe('verifyTotp', () => {
  const now = 1_700_000_015_000
  const step = Math.floor(now / 30_000)
  const codeAt = (s: number): string => hotp(rfcKey, s, 6)

  it('accepts one step either side for clock drift, returning the matched step', () => {
    expect(verifyTotp(rfcSecret, codeAt(step - 1), now, null)).toBe(step - 1)
    expect(verifyTotp(rfcSecret, codeAt(step), now, null)).toBe(step)
    expect(verifyTotp(rfcSecret, codeAt(step + 1), now, null)).toBe(step + 1)
  })

  it('refuses codes two steps away', () => {
    expect(verifyTotp(rfcSecret, codeAt(step - 2), now, null)).toBeNull()
    expect(verifyTotp(rfcSecret, codeAt(step + 2), now, null)).toBeNull()
  })

  it('refuses a replayed code, and any code at or before the last used step', () => {
    const used = verifyTotp(rfcSecret, codeAt(step), now, null)
    expect(used).toBe(step)
    expect(verifyTotp(rfcSecret, codeAt(step), now, used)).toBeNull()
    expect(verifyTotp(rfcSecret, codeAt(step), now + 25_000, used)).toBeNull()
    expect(verifyTotp(rfcSecret, codeAt(step - 1), now, used)).toBeNull()
    expect(verifyTotp(rfcSecret, codeAt(step + 1), now, used)).toBe(step + 1)
    expect(verifyTotp(rfcSecret, codeAt(step), now, step - 1)).toBe(step)
  })

  it('never returns a step at or before lastUsedStep', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -3, max: 3 }),
        fc.integer({ min: -3, max: 3 }),
        (codeOffset, lastOffset) => {
          const accepted = verifyTotp(rfcSecret, codeAt(step + codeOffset), now, step + lastOffset)
          expect(accepted === null || accepted > step + lastOffset).toBe(true)
          if (accepted !== null) expect(accepted).toBe(step + codeOffset)
        },
      ),
    )
  })

  it('refuses anything that is not exactly 6 ASCII digits', () => {
    const code = codeAt(step)
    for (const bad of [
      '',
      code.slice(1),
      `${code}0`,
      ` ${code}`,
      `${code}\n`,
      `${code.slice(0, 3)} ${code.slice(3)}`,
    ]) {
      expect(verifyTotp(rfcSecret, bad, now, null), JSON.stringify(bad)).toBeNull()
    }
    const fullWidth = code.replace(/[0-9]/g, (d) => String.fromCharCode(0xff10 + Number(d)))
    expect(verifyTotp(rfcSecret, fullWidth, now, null)).toBeNull()
    expect(verifyTotp(rfcSecret, hotp(rfcKey, step, 8), now, null)).toBeNull()
  })

  it('refuses a wrong code', () => {
    const wrong = String((Number(codeAt(step)) + 1) % 1_000_000).padStart(6, '0')
    expect(verifyTotp(rfcSecret, wrong, now, null)).toBeNull()
  })
})

describe('enrolment', () => {
  it('generates a 160-bit base32 secret, fresh each time', () => {
    const secret = generateTotpSecret()
    expect(secret).toMatch(/^[A-Z2-7]{32}$/)
    expect(Secret.fromBase32(secret).bytes).toHaveLength(20)
    expect(generateTotpSecret()).not.toBe(secret)
  })

  it('builds an otpauth URI with issuer, SHA1, 6 digits and 30 s', () => {
    const secret = generateTotpSecret()
    const uri = totpUri({ issuer: 'Auth Service', account: 'alice@example.com', secret })
    expect(uri).toMatch(/^otpauth:\/\/totp\//)
    const parsed = URI.parse(uri)
    expect(parsed).toBeInstanceOf(TOTP)
    expect(parsed).toMatchObject({
      issuer: 'Auth Service',
      label: 'alice@example.com',
      algorithm: 'SHA1',
      digits: 6,
    })
    expect((parsed as TOTP).period).toBe(30)
    expect(parsed.secret.base32).toBe(secret)
  })

  it('renders the URI as an SVG QR code', async () => {
    const svg = await totpQrSvg(totpUri({ issuer: 'Auth', account: 'bob', secret: rfcSecret }))
    expect(svg.trimStart()).toMatch(/^<svg[\s>]/)
    expect(svg.trimEnd()).toMatch(/<\/svg>$/)
  })
})

describe('recovery codes', () => {
  it('generates 10 distinct xxxx-xxxx-xxxx codes from the base32 alphabet (60 bits each)', () => {
    const codes = generateRecoveryCodes()
    expect(codes).toHaveLength(10)
    expect(new Set(codes).size).toBe(10)
    for (const code of codes) expect(code).toMatch(/^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/)
    expect(generateRecoveryCodes(3)).toHaveLength(3)
  })

  it('hashes the normalised code with SHA-256', () => {
    const expected = createHash('sha256').update('abcdefghijkl').digest('hex')
    expect(hashRecoveryCode('abcd-efgh-ijkl')).toBe(expected)
    expect(hashRecoveryCode('ABCD-EFGH-IJKL')).toBe(expected)
    expect(hashRecoveryCode(' abcd efgh\tijkl ')).toBe(expected)
    expect(hashRecoveryCode('abcdefghijkl')).toBe(expected)
  })

  it('finds the index of the matching hash, or -1', () => {
    const codes = generateRecoveryCodes()
    const hashes = codes.map(hashRecoveryCode)
    codes.forEach((code, index) => {
      expect(matchRecoveryCode(code.toUpperCase().replaceAll('-', ' '), hashes)).toBe(index)
    })
    expect(matchRecoveryCode('aaaa-aaaa-aaaa', hashes)).toBe(-1)
    expect(matchRecoveryCode(codes[0], [])).toBe(-1)
    expect(matchRecoveryCode(codes[1], ['not hex', '', hashes[1]])).toBe(2)
  })
})
