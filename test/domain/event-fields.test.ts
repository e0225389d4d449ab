/**
 * Every text field of every event is declared personal (stored encrypted) or safe, so a new event
 * or field cannot reach the store in plaintext unnoticed. The compiler enforces the declarations
 * (`TextFieldDeclarations`); these tests check them again against one full sample of each event.
 */
import { describe, expect, it } from 'vitest'
import { ACCOUNT_EVENT_FIELDS } from '../../domain/account.events.ts'
import { DOMAIN_EVENT_TYPES, type DomainEvent } from '../../domain/events.ts'
import { PERSONAL_FIELDS } from '../../domain/personal-data.ts'
import { SESSION_EVENT_FIELDS } from '../../domain/session.events.ts'
import { createEventCodec, type FieldCipher, SEALED_FIELD } from '../../src/app/event-codec.ts'
import { accountStream, dataKeyOwner, sessionStream } from '../../src/app/streams.ts'
import type { RecordedEvent } from '../../src/eventstore/event-store.ts'
import { ENCRYPTED_PREFIX } from '../../src/security/data-keys.ts'

type Type = DomainEvent['type']
/** One event of each type with every field set, optional ones too: a new field must appear here. */
const samples: { [T in Type]: { type: T; data: Required<Extract<DomainEvent, { type: T }>['data']> } } = {
  AccountRegistered: {
    type: 'AccountRegistered',
    data: {
      user_id: 7,
      username: 'alice',
      email: 'alice@example.com',
      full_name: 'Alice Liddell',
      company_name: 'Looking Glass Ltd',
      role: 'vendor',
      password_hash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA',
      username_key: 'username-hmac',
      email_key: 'email-hmac',
    },
  },
  LoginFailed: {
    type: 'LoginFailed',
    data: { reason: 'password', ip_address: '203.0.113.9', user_agent: 'Mozilla/5.0' },
  },
  FailedLoginsCleared: { type: 'FailedLoginsCleared', data: {} },
  AccountLocked: {
    type: 'AccountLocked',
    data: { reason: 'admin', note: 'support ticket 42', until: '2026-11-25T12:15:00.000Z' },
  },
  AccountUnlocked: { type: 'AccountUnlocked', data: {} },
  AccountDeactivated: { type: 'AccountDeactivated', data: {} },
  AccountActivated: { type: 'AccountActivated', data: {} },
  RoleChanged: { type: 'RoleChanged', data: { role: 'admin', previous_role: 'user' } },
  EmailChanged: {
    type: 'EmailChanged',
    data: { email: 'alice@example.org', email_key: 'new-email-hmac', previous_email_key: 'email-hmac' },
  },
  FullNameChanged: { type: 'FullNameChanged', data: { full_name: 'Alice Pleasance Liddell' } },
  PasswordChanged: { type: 'PasswordChanged', data: { password_hash: '$argon2id$new', reason: 'user' } },
  SessionsRevoked: { type: 'SessionsRevoked', data: { reason: 'password_changed', except_session_id: 3 } },
  TotpEnrollmentStarted: { type: 'TotpEnrollmentStarted', data: { secret: 'JBSWY3DPEHPK3PXP' } },
  TotpEnabled: { type: 'TotpEnabled', data: { recovery_code_hashes: ['h0', 'h1'], step: 58_000_000 } },
  TotpDisabled: { type: 'TotpDisabled', data: {} },
  TotpCodeAccepted: { type: 'TotpCodeAccepted', data: { step: 58_000_001, challenge_id: 'c1' } },
  RecoveryCodeUsed: { type: 'RecoveryCodeUsed', data: { index: 1, challenge_id: 'c2' } },
  PasswordResetRequested: {
    type: 'PasswordResetRequested',
    data: { token_hash: 'reset-hash', expires_at: '2026-11-25T12:30:00.000Z' },
  },
  PasswordResetCompleted: { type: 'PasswordResetCompleted', data: { token_hash: 'reset-hash' } },
  AccountDeleted: {
    type: 'AccountDeleted',
    data: { username_key: 'username-hmac', email_key: 'email-hmac' },
  },
  EmailVerificationRequested: {
    type: 'EmailVerificationRequested',
    data: {
      token_hash: 'verification-hash',
      expires_at: '2026-11-26T12:00:00.000Z',
      email: 'alice@example.net',
      email_key: 'pending-email-hmac',
    },
  },
  EmailVerified: { type: 'EmailVerified', data: { token_hash: 'verification-hash' } },
  PasskeyRegistered: {
    type: 'PasskeyRegistered',
    data: {
      passkey_id: 1,
      name: "Alice's phone",
      credential_id: 'q83vEjRWeJA',
      public_key: 'pQECAyYgASFYIA',
      user_handle: 'dXNlci1oYW5kbGU',
      sign_count: 0,
      transports: ['internal', 'hybrid'],
      aaguid: '00000000-0000-0000-0000-000000000000',
      device_type: 'multiDevice',
      backed_up: true,
      user_verified: true,
      attestation_format: 'packed',
      challenge_id: 'c3',
      challenge_expires_at: '2026-11-25T12:05:00.000Z',
    },
  },
  PasskeyRenamed: { type: 'PasskeyRenamed', data: { passkey_id: 1, name: "Alice's old phone" } },
  PasskeyRemoved: { type: 'PasskeyRemoved', data: { passkey_id: 1 } },
  PasskeyUsed: {
    type: 'PasskeyUsed',
    data: {
      passkey_id: 1,
      sign_count: 5,
      user_verified: true,
      backed_up: true,
      challenge_id: 'c4',
      challenge_expires_at: '2026-11-25T12:10:00.000Z',
    },
  },
  PasskeySignCountRegressed: {
    type: 'PasskeySignCountRegressed',
    data: {
      passkey_id: 1,
      stored_sign_count: 5,
      presented_sign_count: 3,
      ip_address: '203.0.113.9',
      user_agent: 'Mozilla/5.0',
    },
  },
  PasswordRemoved: { type: 'PasswordRemoved', data: {} },
  SessionStarted: {
    type: 'SessionStarted',
    data: {
      session_id: 3,
      user_id: 7,
      account_revision: 4,
      amr: ['pwd', 'otp'],
      refresh_token_hash: 'refresh-hash',
      expires_at: '2026-12-25T12:00:00.000Z',
      ends_at: '2026-12-25T12:00:00.000Z',
      ip_address: '203.0.113.9',
      user_agent: 'Mozilla/5.0',
    },
  },
  SessionRefreshed: {
    type: 'SessionRefreshed',
    data: {
      user_id: 7,
      refresh_token_hash: 'next-hash',
      expires_at: '2026-12-25T13:00:00.000Z',
      refreshed_at: '2026-11-25T13:00:00.000Z',
      within_grace: true,
    },
  },
  SessionRevoked: { type: 'SessionRevoked', data: { user_id: 7, reason: 'refresh_token_reuse' } },
}

const declared: Record<string, Record<string, 'personal' | 'safe'>> = {
  ...ACCOUNT_EVENT_FIELDS,
  ...SESSION_EVENT_FIELDS,
}
const sampleList = Object.values(samples) as DomainEvent[]
const isText = (value: unknown): boolean =>
  typeof value === 'string' || (Array.isArray(value) && value.every((item) => typeof item === 'string'))

describe('event fields: every text field is declared personal or safe', () => {
  it('has a declaration and a sample for every event type, and no other', () => {
    expect(Object.keys(declared).sort()).toEqual(Object.keys(samples).sort())
    expect([...DOMAIN_EVENT_TYPES].sort()).toEqual(Object.keys(samples).sort())
  })

  it.each(sampleList.map((event) => [event.type, event] as const))(
    '%s: each text field is declared personal or safe',
    (type, event) => {
      const undeclared = Object.entries(event.data)
        .filter(([field, value]) => isText(value) && declared[type][field] === undefined)
        .map(([field]) => field)
      expect(undeclared, `${type} has text fields declared neither personal nor safe`).toEqual([])
    },
  )

  it('declares only fields that exist, and personal only those holding one string (the codec encrypts nothing else)', () => {
    for (const event of sampleList) {
      const data: Record<string, unknown> = event.data
      for (const [field, kind] of Object.entries(declared[event.type])) {
        expect(data, `${event.type}.${field}`).toHaveProperty(field)
        if (kind === 'personal') expect(typeof data[field], `${event.type}.${field}`).toBe('string')
      }
    }
  })
})

describe('event fields: the codec encrypts exactly the personal fields', () => {
  // Reversible and recognisable: enough to see what the codec encrypted.
  const cipher: FieldCipher = {
    isErased: () => false,
    ensureKey: () => {},
    encrypt: (owner, plaintext) =>
      `${ENCRYPTED_PREFIX}${Buffer.from(`${owner}|${plaintext}`).toString('base64url')}`,
    decrypt: (owner, value) => {
      const [keyOwner, plaintext] = Buffer.from(value.slice(ENCRYPTED_PREFIX.length), 'base64url')
        .toString()
        .split('|')
      return keyOwner === owner ? plaintext : null
    },
  }
  const codec = createEventCodec(cipher)

  const storedAs = (type: string, data: Record<string, unknown>): RecordedEvent =>
    ({
      stream_id:
        type.startsWith('Session') && type !== 'SessionsRevoked' ? sessionStream(3) : accountStream(7),
      revision: 0,
      position: 1n,
      type,
      data,
      metadata: {},
    }) as RecordedEvent

  it.each(sampleList.map((event) => [event.type, event] as const))('%s', (type, event) => {
    const data: Record<string, unknown> = event.data
    const encoded = codec.encode(7, type, data)
    const personal = PERSONAL_FIELDS.get(type) ?? []
    const safe = Object.fromEntries(Object.entries(data).filter(([field]) => !personal.includes(field)))
    if (personal.length === 0) {
      expect(encoded).toEqual(data)
    } else {
      // Every personal field sealed together under the owner's key, nothing else in it.
      const { [SEALED_FIELD]: sealed, ...clear } = encoded
      expect(clear).toEqual(safe)
      expect(sealed).toMatch(new RegExp(`^${ENCRYPTED_PREFIX}`))
      const opened = JSON.parse(cipher.decrypt(dataKeyOwner(7), String(sealed)) ?? 'null')
      expect(opened).toEqual(Object.fromEntries(personal.map((field) => [field, data[field]])))
    }
    expect(codec.decode(storedAs(type, encoded)).data).toEqual(data)
  })

  it('reads events written with each personal field encrypted on its own, or in clear', () => {
    const legacy = {
      user_id: 7,
      username: cipher.encrypt(dataKeyOwner(7), 'alice'),
      email: cipher.encrypt(dataKeyOwner(7), 'alice@example.com'),
      role: 'user',
      password_hash: cipher.encrypt(dataKeyOwner(7), '$argon2id$…'),
      username_key: 'written-before-it-was-personal',
    }
    expect(codec.decode(storedAs('AccountRegistered', legacy)).data).toEqual({
      user_id: 7,
      username: 'alice',
      email: 'alice@example.com',
      role: 'user',
      password_hash: '$argon2id$…',
      username_key: 'written-before-it-was-personal',
    })
  })

  it('reads every declared personal field as "[erased]" once the key is gone, present or not', () => {
    const encoded = codec.encode(7, 'SessionStarted', {
      ...samples.SessionStarted.data,
      user_agent: undefined,
    })
    const erased = createEventCodec({ ...cipher, decrypt: () => null })
    const data = erased.decode(storedAs('SessionStarted', encoded)).data as Record<string, unknown>
    expect(data).toMatchObject({ ip_address: '[erased]', user_agent: '[erased]', user_id: 7 })
    expect(data).not.toHaveProperty(SEALED_FIELD)
  })

  it('keeps the sealed field name free: no event declares a field of that name', () => {
    for (const declarations of [ACCOUNT_EVENT_FIELDS, SESSION_EVENT_FIELDS])
      for (const [type, fields] of Object.entries(declarations))
        expect(Object.keys(fields), type).not.toContain(SEALED_FIELD)
  })
})
