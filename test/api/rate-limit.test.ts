/**
 * The rate limiter's memory is bounded: at most `maxEntries` windows whatever the number of
 * clients (with TRUST_PROXY=1 a client names its own address), the oldest evicted first, while a
 * client over its limit stays limited through the flood.
 */
import { describe, expect, it } from 'vitest'
import { createRateLimiter, DEFAULT_MAX_ENTRIES } from '../../src/api/rate-limit.ts'

const ROUTE = 'auth.login'

describe('rate limiter', () => {
  it('limits per client and route within a minute, then starts a new window', () => {
    let t = 1_000_000
    const limiter = createRateLimiter(3, () => t)
    expect([1, 2, 3].map(() => limiter.hit('a', ROUTE))).toEqual([0, 0, 0])
    expect(limiter.hit('a', ROUTE)).toBe(60)
    expect(limiter.hit('a', 'auth.register')).toBe(0)
    expect(limiter.hit('b', ROUTE)).toBe(0)
    t += 45_500
    expect(limiter.hit('a', ROUTE)).toBe(15)
    t += 14_500
    expect(limiter.hit('a', ROUTE)).toBe(0)
  })

  it(`keeps at most ${DEFAULT_MAX_ENTRIES.toLocaleString('en-US')} windows for 200,000 distinct clients`, () => {
    let t = 1_000_000
    const limiter = createRateLimiter(60, () => t)
    let largest = 0
    let refused = 0
    for (let i = 0; i < 200_000; i++) {
      if (limiter.hit(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, ROUTE) !== 0) refused++
      if (i % 1000 === 0) t += 1 // all within one minute: nothing expires
      largest = Math.max(largest, limiter.size)
    }
    expect(refused).toBe(0)
    expect(limiter.size).toBe(DEFAULT_MAX_ENTRIES)
    expect(largest).toBe(DEFAULT_MAX_ENTRIES)
  })

  it('evicts the oldest window first', () => {
    let t = 0
    const limiter = createRateLimiter(2, () => t, 3)
    for (const client of ['a', 'b', 'c']) {
      limiter.hit(client, ROUTE)
      limiter.hit(client, ROUTE)
      t += 1000
    }
    // Each of a, b, c used its 2 requests; d pushes out a (the oldest), so a starts afresh.
    expect(limiter.hit('d', ROUTE)).toBe(0)
    expect(limiter.size).toBe(3)
    expect(limiter.hit('a', ROUTE)).toBe(0) // a new window for a; b goes
    expect(limiter.hit('c', ROUTE)).toBe(59) // c is still there and at its limit
    expect(limiter.hit('b', ROUTE)).toBe(0) // b had been evicted
  })

  it('a window that starts again moves to the back: the oldest is the one that started first', () => {
    let t = 0
    const limiter = createRateLimiter(5, () => t, 2)
    limiter.hit('a', ROUTE)
    t += 30_000
    limiter.hit('b', ROUTE)
    t += 31_000 // a's window is over, b's is not
    limiter.hit('a', ROUTE) // a starts a new window, now younger than b's
    limiter.hit('c', ROUTE) // evicts b, the oldest
    for (let i = 0; i < 4; i++) expect(limiter.hit('a', ROUTE)).toBe(0)
    expect(limiter.hit('a', ROUTE)).toBe(60) // a kept its count: it was not evicted
  })

  it('a client over its limit stays limited while 200,000 others come and go', () => {
    let t = 5_000_000
    const limiter = createRateLimiter(5, () => t)
    for (let i = 0; i < 5; i++) expect(limiter.hit('203.0.113.7', ROUTE)).toBe(0)
    expect(limiter.hit('203.0.113.7', ROUTE)).toBe(60)
    // Spoofed X-Forwarded-For addresses, one request each, over 50 seconds.
    for (let i = 0; i < 200_000; i++) {
      limiter.hit(`spoofed-${i}`, ROUTE)
      if (i % 4000 === 0) t += 1000
    }
    expect(limiter.size).toBe(DEFAULT_MAX_ENTRIES)
    expect(limiter.hit('203.0.113.7', ROUTE)).toBeGreaterThan(0)
    // Its own minute still ends as usual.
    t += 10_000
    expect(limiter.hit('203.0.113.7', ROUTE)).toBe(0)
  })

  it('the trade-off: a flood of more than the cap of windows that are themselves over the limit', () => {
    const t = 0
    const limiter = createRateLimiter(1, () => t, 100)
    limiter.hit('victim-of-eviction', ROUTE)
    expect(limiter.hit('victim-of-eviction', ROUTE)).toBe(60)
    // 200 clients each over their limit: more refusing windows than the cap can hold.
    for (let i = 0; i < 200; i++) {
      limiter.hit(`flood-${i}`, ROUTE)
      limiter.hit(`flood-${i}`, ROUTE)
    }
    expect(limiter.size).toBe(100)
    // The oldest refusing window was forgotten: that client starts a new window.
    expect(limiter.hit('victim-of-eviction', ROUTE)).toBe(0)
  })

  it('sweeps expired windows and keys a made-up long address by its first 100 characters', () => {
    let t = 0
    const limiter = createRateLimiter(1, () => t)
    for (let i = 0; i < 1000; i++) limiter.hit(`c${i}`, ROUTE)
    expect(limiter.size).toBe(1000)
    t += 61_000
    limiter.hit('late', ROUTE)
    expect(limiter.size).toBe(1)
    const long = 'x'.repeat(100)
    expect(limiter.hit(`${long}1`, ROUTE)).toBe(0)
    expect(limiter.hit(`${long}2`, ROUTE)).toBe(60)
    expect(limiter.size).toBe(2)
  })

  it('does nothing with a limit of 0', () => {
    const limiter = createRateLimiter(0)
    for (let i = 0; i < 10; i++) expect(limiter.hit(`c${i}`, ROUTE)).toBe(0)
    expect(limiter.size).toBe(0)
  })
})
