/** RP_ID and RP_ORIGINS (src/config.ts): derived from PUBLIC_URL unless set, refused when malformed. */
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../src/config.ts'

describe('RP_ID and RP_ORIGINS', () => {
  it('default to the host and origin of PUBLIC_URL', () => {
    const config = loadConfig({ PUBLIC_URL: 'https://Auth.Example.com/base/' })
    expect(config.rpId).toBe('auth.example.com')
    expect(config.rpOrigins).toEqual(['https://auth.example.com'])
  })

  it('default from HOST and PORT when PUBLIC_URL is unset', () => {
    const config = loadConfig({ HOST: 'localhost', PORT: '8123' })
    expect(config.rpId).toBe('localhost')
    expect(config.rpOrigins).toEqual(['http://localhost:8123'])
  })

  it('use localhost for a loopback or unspecified address, which browsers refuse as an RP id', () => {
    for (const [env, origin] of [
      [{}, 'http://localhost:8000'],
      [{ PUBLIC_URL: 'http://127.0.0.1:9000' }, 'http://localhost:9000'],
      [{ HOST: '0.0.0.0', PORT: '8001' }, 'http://localhost:8001'],
      [{ PUBLIC_URL: 'http://[::1]:8002' }, 'http://localhost:8002'],
    ] as const) {
      const config = loadConfig(env)
      expect(config.rpId, JSON.stringify(env)).toBe('localhost')
      expect(config.rpOrigins, JSON.stringify(env)).toEqual([origin])
    }
    expect(loadConfig({ PUBLIC_URL: 'http://10.0.0.5:8000' }).rpId).toBe('10.0.0.5')
  })

  it('take explicit values: one RP id, several origins', () => {
    const config = loadConfig({
      PUBLIC_URL: 'http://127.0.0.1:8000',
      RP_ID: 'example.com',
      RP_ORIGINS: 'https://example.com, https://login.example.com:8443',
    })
    expect(config.rpId).toBe('example.com')
    expect(config.rpOrigins).toEqual(['https://example.com', 'https://login.example.com:8443'])
  })

  it.each([
    [{ RP_ID: 'https://example.com' }],
    [{ RP_ID: 'example.com:443' }],
    [{ RP_ID: 'example.com/path' }],
    [{ RP_ORIGINS: 'example.com' }],
    [{ RP_ORIGINS: 'https://example.com/login' }],
    [{ RP_ORIGINS: 'https://example.com,nonsense' }],
    [{ PUBLIC_URL: 'not a url' }],
  ])('refuses %j', (env) => {
    expect(() => loadConfig(env)).toThrow(ConfigError)
  })
})
