import { describe, expect, it } from 'vitest'
import { commonPasswords } from '../../domain/common-passwords.ts'
import { passwordProblem } from '../../domain/password-policy.ts'

const ctx = { username: 'alice_smith', email: 'Alice.Smith@example.com' }

describe('passwordProblem', () => {
  it('accepts a decent password', () => {
    expect(passwordProblem('correct horse battery', ctx)).toBeNull()
    expect(passwordProblem('x7#Kq9!mZ2', {})).toBeNull()
  })

  it('counts characters, not UTF-16 units', () => {
    expect(passwordProblem('🔒🔒🔒🔒🔒🔒🔒', {})).toMatch(/at least 8/)
    expect(passwordProblem('🔒🔒🔒🔒🔒🔒🔒🔒', {})).toBeNull()
    expect(passwordProblem('é'.repeat(128), {})).toBeNull()
  })

  it('enforces 8 to 128 characters', () => {
    expect(passwordProblem('', {})).toMatch(/at least 8/)
    expect(passwordProblem('Zq4!wx7', {})).toMatch(/at least 8/)
    expect(passwordProblem('Zq4!wx7p', {})).toBeNull()
    expect(passwordProblem(`${'a'.repeat(120)}Zq4!wx7p`, {})).toBeNull()
    expect(passwordProblem(`${'a'.repeat(121)}Zq4!wx7p`, {})).toMatch(/at most 128/)
  })

  it('refuses common passwords, case-insensitively', () => {
    for (const common of ['password', 'Password1', '12345678', '123456789', 'QWERTYUIOP', 'iloveyou']) {
      expect(passwordProblem(common, {})).toBe('Password is too common')
    }
  })

  it('refuses the username, case-insensitively', () => {
    expect(passwordProblem('ALICE_SMITH', ctx)).toBe('Password must not be the username')
  })

  it('refuses the email and its local part, case-insensitively', () => {
    expect(passwordProblem('alice.smith@EXAMPLE.com', ctx)).toBe('Password must not be the email address')
    expect(passwordProblem('alice.SMITH', ctx)).toBe('Password must not be the email address')
    expect(passwordProblem('alice.smith@example', ctx)).toBeNull()
  })

  it('ignores missing context', () => {
    expect(passwordProblem('alice_smith', {})).toBeNull()
  })
})

describe('commonPasswords', () => {
  it('holds a few hundred lowercase entries of at least 8 characters', () => {
    expect(commonPasswords.size).toBeGreaterThanOrEqual(300)
    for (const entry of commonPasswords) {
      expect(entry.length).toBeGreaterThanOrEqual(8)
      expect(entry).toBe(entry.toLowerCase())
    }
  })
})
