/**
 * `canonicalJson` (what every event hash is taken over) against RFC 8785, the JSON
 * Canonicalization Scheme, and against `canonicalize`, a maintained implementation of it.
 *
 * On I-JSON — every JSON text without lone surrogates, NaN or infinities — the two agree byte for
 * byte: RFC 8785's own examples, and generated values of every kind an event holds. They part on
 * lone surrogates: RFC 8785 excludes them and `canonicalize` throws, while ours writes the escape
 * JSON.stringify writes. A string field that is not personal (a vendor's company name, an admin's
 * lock note) takes whatever a client sent, lone surrogates included, so stored events may hold
 * them; their hashes were taken with ours and must keep verifying. That is why the hash chain keeps
 * its own dozen lines instead of the package.
 */
import canonicalize from 'canonicalize'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createApp } from '../../src/api/app.ts'
import { canonicalJson, eventHash, GENESIS_HASH, verifyChain } from '../../src/eventstore/hash-chain.ts'
import { openTestRuntime } from '../support/runtime.ts'

const double = (hex: string): number => Buffer.from(hex, 'hex').readDoubleBE()

describe('canonicalJson and RFC 8785', () => {
  it("gives RFC 8785's example of section 3.2.2 (numbers, string escapes, literals)", () => {
    const input = JSON.parse(`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\"\\/",
      "literals": [null, true, false]
    }`)
    const expected =
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
      '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    expect(canonicalJson(input)).toBe(expected)
    expect(canonicalize(input)).toBe(expected)
  })

  it("sorts properties by UTF-16 code units as in RFC 8785's example of section 3.2.3", () => {
    const input = JSON.parse(`{
      "\\u20ac": "Euro Sign",
      "\\r": "Carriage Return",
      "\\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\\ud83d\\ude00": "Emoji: Grinning Face",
      "\\u0080": "Control",
      "\\u00f6": "Latin Small Letter O With Diaeresis"
    }`)
    const expected =
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
      '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    expect(canonicalJson(input)).toBe(expected)
    expect(canonicalize(input)).toBe(expected)
  })

  it("writes the numbers of RFC 8785's appendix B as the RFC does", () => {
    const samples: [string, string][] = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'], // minus zero
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'], // round to even
    ]
    for (const [hex, text] of samples) {
      expect(canonicalJson(double(hex)), hex).toBe(text)
      expect(canonicalJson({ n: double(hex) }), hex).toBe(`{"n":${text}}`)
      expect(canonicalize(double(hex)), hex).toBe(text)
    }
  })

  it('agrees with canonicalize on generated I-JSON values: unicode, escapes, large numbers, nesting', () => {
    const number = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.maxSafeInteger(),
      fc.double({ min: 2 ** 53, max: Number.MAX_VALUE, noNaN: true }),
      fc.integer(),
    )
    const text = fc.oneof(
      fc.string({ unit: 'grapheme' }),
      fc.string({ unit: 'binary' }),
      fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)) }),
    )
    const value = fc.letrec((tie) => ({
      json: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        number,
        text,
        fc.array(tie('json')),
        fc.dictionary(text, tie('json')),
      ),
    })).json
    fc.assert(
      fc.property(value, (v) => {
        expect(canonicalJson(v)).toBe(canonicalize(v))
      }),
      { numRuns: 1000 },
    )
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: 'binary' }), (v) => {
        expect(canonicalJson(v)).toBe(canonicalize(v))
      }),
      { numRuns: 1000 },
    )
  })

  it('agrees with canonicalize on generated events as the hash chain takes them', () => {
    const text = fc.string({ unit: 'binary', maxLength: 40 })
    const event = fc.record({
      stream_id: fc.oneof(
        fc.nat().map((n) => `user-${n}`),
        fc.nat().map((n) => `session-${n}`),
      ),
      revision: fc.nat(),
      type: fc.constantFrom('UserRegistered', 'LoginSucceeded', 'AccountLocked', 'SessionStarted'),
      data: fc.dictionary(
        text,
        fc.oneof(text, fc.integer(), fc.constant(null), fc.boolean(), fc.array(text, { maxLength: 10 })),
      ),
      metadata: fc.record({
        event_id: fc.uuid(),
        schema_version: fc.constant(1),
        occurred_at: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        actor_id: fc.option(fc.nat(), { nil: null }),
        prev_hash: fc.constant(GENESIS_HASH),
      }),
    })
    fc.assert(
      fc.property(event, (e) => {
        expect(canonicalJson(e)).toBe(canonicalize(e))
      }),
      { numRuns: 1000 },
    )
  })

  it('keeps the hash of an event fixed (a stored chain must verify after any change here)', () => {
    const hash = eventHash({
      stream_id: 'user-42',
      revision: 3,
      type: 'AccountLocked',
      data: {
        reason: 'admin',
        note: 'Zoë 🙂 "quoted" \\ \n\u0001',
        until: null,
        n: [1e21, 0.1, -0, 2 ** 60],
      },
      metadata: {
        event_id: '7f1c2a64-9a43-4c41-9a1e-0c8f1f3c9b11',
        schema_version: 1,
        occurred_at: '2025-01-02T03:04:05.678Z',
        actor_id: '1',
        correlation_id: null,
        causation_id: null,
        prev_hash: GENESIS_HASH,
      },
    })
    expect(hash).toBe('29d35fd643a79b2b9db63aed11a68347e95fc2525c4efd2ddb77ae9219272607')
  })
})

describe('where canonicalJson and canonicalize part (outside I-JSON)', () => {
  it('writes a lone surrogate as the escape JSON.stringify writes, where canonicalize throws', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
        (s) => {
          expect(canonicalJson({ s })).toBe(`{"s":${JSON.stringify(s)}}`)
          if (s.isWellFormed()) expect(canonicalize({ s })).toBe(canonicalJson({ s }))
          else expect(() => canonicalize({ s })).toThrow(/surrogate/i)
        },
      ),
      { numRuns: 2000 },
    )
    expect(canonicalJson({ note: 'a\ud800b' })).toBe('{"note":"a\\ud800b"}')
  })

  it('a vendor registered with a lone surrogate in its company name: ours verifies it, canonicalize throws', async () => {
    const t = await openTestRuntime(undefined, { RATE_LIMIT_PER_MINUTE: '0' })
    try {
      const app = await createApp(t.runtime)
      // The JSON text "Acme \ud83d" parses to a string ending in a lone high surrogate.
      const body =
        '{"username":"acme","email":"acme@example.com","password":"correct horse battery",' +
        '"company_name":"Acme \\ud83d","full_name":"Ann Acme"}'
      const response = await app.handle(
        new Request('http://127.0.0.1/vendor/register_vendor', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        }),
      )
      expect(response.status).toBe(200)
      const { id } = (await response.json()) as { id: number }
      const events = await t.runtime.store.readStream(`user-${id}`)
      expect(events[0].data.company_name).toBe('Acme \ud83d')
      expect(verifyChain(events)).toBeNull()
      const { hash: _, ...metadata } = events[0].metadata
      const { stream_id, revision, type, data } = events[0]
      expect(() => canonicalize({ stream_id, revision, type, data, metadata })).toThrow(/surrogate/i)
    } finally {
      await t.cleanup()
    }
  })

  it('writes NaN and the infinities as null, as JSON.stringify does, where RFC 8785 and canonicalize refuse them', () => {
    expect(canonicalJson({ a: Number.NaN, b: Number.POSITIVE_INFINITY, c: [Number.NEGATIVE_INFINITY] })).toBe(
      '{"a":null,"b":null,"c":[null]}',
    )
    expect(() => canonicalize(Number.NaN)).toThrow()
    expect(() => canonicalize(double('7ff0000000000000'))).toThrow()
  })
})
