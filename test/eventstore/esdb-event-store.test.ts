import { describe, expect, it } from 'vitest'
import {
  isEsdbConnectionString,
  openEsdbEventStore,
  redactConnectionString,
  toEsdbConnectionString,
} from '../../src/eventstore/esdb-event-store.ts'
import { EventStoreUnavailableError } from '../../src/eventstore/event-store.ts'
import { describeEventStoreContract } from './contract.ts'

// Runs against a real server only when one is given, e.g.
// EVENT_STORE_URL='esdb://localhost:2113?tls=false' (docker compose up eventstore).
const url = process.env.EVENT_STORE_URL ?? ''

describe.skipIf(!isEsdbConnectionString(url))('EventStoreDB adapter against a server', () => {
  describeEventStoreContract('esdb', async () => ({
    // The suite's stream names, which a shared server filters like this service's own.
    open: () => openEsdbEventStore(url, { streamPrefixes: ['test_', 'marker_'] }),
    // Stream names are unique per run; a shared server keeps them.
    cleanup: async () => {},
  }))
})

describe('EventStoreDB adapter without a server', () => {
  it('fails fast with EventStoreUnavailableError when nothing listens', async () => {
    const started = Date.now()
    const error = await openEsdbEventStore('esdb://admin:s3cret@127.0.0.1:1?tls=false').catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(EventStoreUnavailableError)
    expect(Date.now() - started).toBeLessThan(6_000)
    const message = (error as Error).message
    expect(message).toContain('esdb://127.0.0.1:1?tls=false')
    expect(message).not.toContain('s3cret')
  })

  it('gives up after the connect timeout when the server does not answer', async () => {
    const started = Date.now()
    // Not routable: either refused at once or never answered; both must end in the same error.
    const error = await openEsdbEventStore('kurrentdb://10.255.255.1:2113?tls=false', {
      connectTimeoutMs: 300,
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(EventStoreUnavailableError)
    expect(Date.now() - started).toBeLessThan(3_000)
  })

  it('refuses a malformed connection string without echoing the password', async () => {
    const error = await openEsdbEventStore('esdb://admin:s3cret@host:notaport').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Error)
    expect((error as Error).message).not.toContain('s3cret')
  })

  it('accepts esdb:// and kurrentdb:// schemes', () => {
    expect(isEsdbConnectionString('esdb://localhost:2113?tls=false')).toBe(true)
    expect(isEsdbConnectionString('esdb+discover://cluster.example:2113')).toBe(true)
    expect(isEsdbConnectionString('kurrentdb://localhost:2113')).toBe(true)
    expect(isEsdbConnectionString('sqlite:///data/events.db')).toBe(false)
    expect(isEsdbConnectionString('')).toBe(false)
    expect(toEsdbConnectionString('kurrentdb://a:2113,b:2113?tls=false')).toBe(
      'esdb://a:2113,b:2113?tls=false',
    )
    expect(toEsdbConnectionString('kurrentdb+discover://c.example:2113')).toBe(
      'esdb+discover://c.example:2113',
    )
    expect(toEsdbConnectionString('esdb://localhost:2113')).toBe('esdb://localhost:2113')
  })

  it('redacts credentials', () => {
    expect(redactConnectionString('esdb://admin:changeit@localhost:2113?tls=false')).toBe(
      'esdb://localhost:2113?tls=false',
    )
    expect(redactConnectionString('esdb://localhost:2113')).toBe('esdb://localhost:2113')
    expect(redactConnectionString('esdb://u:p@ss@a:2113,b:2113?x=@')).toBe('esdb://a:2113,b:2113?x=@')
  })
})
