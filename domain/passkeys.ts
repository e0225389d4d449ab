/**
 * Passkeys (WebAuthn credentials) of an account: their state as the account stream folds it, and
 * the decisions on registering, renaming, removing and using one. Pure, like the rest of the
 * domain: the signature and attestation checks happen before (src/app/passkeys.ts), these rules
 * decide what the verified facts mean for the account.
 *
 * A challenge is single use: the id of each challenge consumed (by a registration or a login) is
 * remembered until it expires, and a command carrying a remembered one is refused. A sign counter
 * that does not move forward (unless the authenticator keeps none: 0 before and after) is refused
 * and recorded, as a possible clone, and counts as a failed login.
 */
import type {
  AccountEvent,
  PasskeyRegistered,
  PasskeyRemoved,
  PasskeyRenamed,
  PasskeySignCountRegressed,
  PasskeyUsed,
} from './account.events.ts'
import type { ExistingAccount } from './account.ts'
import { DomainError } from './errors.ts'

/** How long a WebAuthn challenge lives (the options call to the response). */
export const PASSKEY_CHALLENGE_TTL_SECONDS = 300
/** Passkeys one account may hold. */
export const MAX_PASSKEYS = 20

export type StoredPasskey = {
  id: number
  name: string
  /** base64url, as the authenticator made it. */
  credentialId: string
  /** base64url of the COSE public key. */
  publicKey: string
  /** base64url of the WebAuthn user handle the credential was created with. */
  userHandle: string
  signCount: number
  transports: string[]
}

export type Passkeys = {
  list: StoredPasskey[]
  /** The last id handed out; ids are never reused within an account. */
  lastId: number
  /** Challenges consumed and not yet expired: each works once. */
  usedChallenges: { id: string; expiresAt: string }[]
}

export const NO_PASSKEYS: Passkeys = { list: [], lastId: 0, usedChallenges: [] }

const REMEMBERED_PASSKEY_CHALLENGES = 256

type Client = { ip_address: string | null; user_agent: string | null }
type Challenge = { challenge_id: string; challenge_expires_at: string }

export type PasskeyCommand =
  | {
      type: 'RegisterPasskey'
      data: Omit<PasskeyRegistered['data'], 'passkey_id' | 'name'> & { name: string | null; now: number }
    }
  | { type: 'RenamePasskey'; data: { passkey_id: number; name: string } }
  | { type: 'RemovePasskey'; data: { passkey_id: number } }
  /**
   * `verified_at_revision`: the account revision whose public key verified the assertion;
   * `sign_count`, `user_verified`, `backed_up`: what the verified authenticator data says.
   */
  | {
      type: 'UsePasskey'
      data: Client &
        Challenge & {
          passkey_id: number
          sign_count: number
          user_verified: boolean
          backed_up: boolean
          now: number
          verified_at_revision: number
        }
    }
  /** Makes the account passwordless; `current_session_id` keeps the session that asked. */
  | { type: 'RemovePassword'; data: { current_session_id: number | null } }

/** What the account decider lends: its login rules, so both kinds of login obey the same ones. */
export type LoginRules = {
  assertCanLogIn(account: ExistingAccount, now: number, verifiedAtRevision: number, voided?: string): void
  failedLoginEvents(
    account: ExistingAccount,
    failure: Client & { reason: 'passkey'; now: number },
  ): AccountEvent[]
}

export const invalidPasskey = (): DomainError => new DomainError('INVALID_CREDENTIALS', 'Invalid passkey')
export const invalidPasskeyChallenge = (): DomainError =>
  new DomainError('INVALID_CREDENTIALS', 'Invalid, expired or already used passkey challenge')
const passkeyNotFound = (): DomainError => new DomainError('PASSKEY_NOT_FOUND', 'Passkey not found')

export const isPasswordless = (account: ExistingAccount): boolean => account.passwordHash === ''

export function findPasskeyByCredential(
  account: ExistingAccount,
  credentialId: string,
): StoredPasskey | undefined {
  return account.passkeys.list.find((p) => p.credentialId === credentialId)
}

function challengeUsable(account: ExistingAccount, challenge: Challenge, now: number): boolean {
  return (
    Date.parse(challenge.challenge_expires_at) > now &&
    !account.passkeys.usedChallenges.some((c) => c.id === challenge.challenge_id)
  )
}

function registerPasskey(
  command: Extract<PasskeyCommand, { type: 'RegisterPasskey' }>,
  account: ExistingAccount,
): AccountEvent[] {
  const { now, name, ...data } = command.data
  if (account.status !== 'active') throw new DomainError('ACCOUNT_DEACTIVATED', 'Account is deactivated')
  if (!challengeUsable(account, data, now)) {
    throw new DomainError('PASSKEY_INVALID', 'Invalid, expired or already used passkey challenge')
  }
  if (findPasskeyByCredential(account, data.credential_id)) {
    throw new DomainError('PASSKEY_CONFLICT', 'This passkey is already registered')
  }
  if (account.passkeys.list.length >= MAX_PASSKEYS) {
    throw new DomainError('PASSKEY_CONFLICT', `An account holds at most ${MAX_PASSKEYS} passkeys`)
  }
  const passkey_id = account.passkeys.lastId + 1
  return [{ type: 'PasskeyRegistered', data: { passkey_id, name: name ?? `Passkey ${passkey_id}`, ...data } }]
}

function usePasskey(
  command: Extract<PasskeyCommand, { type: 'UsePasskey' }>,
  account: ExistingAccount,
  rules: LoginRules,
): AccountEvent[] {
  const { now, verified_at_revision, passkey_id, sign_count, ip_address, user_agent } = command.data
  rules.assertCanLogIn(account, now, verified_at_revision, invalidPasskey().message)
  const passkey = account.passkeys.list.find((p) => p.id === passkey_id)
  // Removed since the assertion was verified.
  if (!passkey) throw invalidPasskey()
  if (!challengeUsable(account, command.data, now)) throw invalidPasskeyChallenge()
  const stored = passkey.signCount
  if ((sign_count > 0 || stored > 0) && sign_count <= stored) {
    return [
      {
        type: 'PasskeySignCountRegressed',
        data: {
          passkey_id,
          stored_sign_count: stored,
          presented_sign_count: sign_count,
          ip_address,
          user_agent,
        },
      },
      ...rules.failedLoginEvents(account, { reason: 'passkey', now, ip_address, user_agent }),
    ]
  }
  const events: AccountEvent[] = [
    {
      type: 'PasskeyUsed',
      data: {
        passkey_id,
        sign_count,
        user_verified: command.data.user_verified,
        backed_up: command.data.backed_up,
        challenge_id: command.data.challenge_id,
        challenge_expires_at: command.data.challenge_expires_at,
      },
    },
  ]
  if (account.failedLogins > 0 || account.automaticLocks > 0)
    events.push({ type: 'FailedLoginsCleared', data: {} })
  return events
}

export function decidePasskey(
  command: PasskeyCommand,
  account: ExistingAccount,
  rules: LoginRules,
): AccountEvent[] {
  switch (command.type) {
    case 'RegisterPasskey':
      return registerPasskey(command, account)
    case 'RenamePasskey': {
      const passkey = account.passkeys.list.find((p) => p.id === command.data.passkey_id)
      if (!passkey) throw passkeyNotFound()
      return passkey.name === command.data.name ? [] : [{ type: 'PasskeyRenamed', data: command.data }]
    }
    case 'RemovePasskey': {
      if (!account.passkeys.list.some((p) => p.id === command.data.passkey_id)) throw passkeyNotFound()
      if (isPasswordless(account) && account.passkeys.list.length === 1) {
        throw new DomainError(
          'PASSKEY_CONFLICT',
          'This is the last passkey of an account without a password: it cannot be removed',
        )
      }
      return [{ type: 'PasskeyRemoved', data: command.data }]
    }
    case 'UsePasskey':
      return usePasskey(command, account, rules)
    case 'RemovePassword':
      if (isPasswordless(account)) throw new DomainError('ALREADY_IN_STATE', 'The account has no password')
      if (account.passkeys.list.length === 0) {
        throw new DomainError('PASSKEY_CONFLICT', 'Register a passkey before removing the password')
      }
      return [
        { type: 'PasswordRemoved', data: {} },
        {
          type: 'SessionsRevoked',
          data: { reason: 'password_changed', except_session_id: command.data.current_session_id },
        },
      ]
  }
}

function withUsedChallenge(passkeys: Passkeys, challenge: Challenge): Passkeys['usedChallenges'] {
  const expiresAt = Date.parse(challenge.challenge_expires_at)
  // Whoever presents a challenge does so after it was issued: one that expired before this one was
  // issued can never be presented again, so it need not be remembered.
  const issuedAt = expiresAt - PASSKEY_CHALLENGE_TTL_SECONDS * 1000
  return [
    ...passkeys.usedChallenges.filter((c) => Date.parse(c.expiresAt) > issuedAt),
    { id: challenge.challenge_id, expiresAt: challenge.challenge_expires_at },
  ].slice(-REMEMBERED_PASSKEY_CHALLENGES)
}

type PasskeyEvent =
  | PasskeyRegistered
  | PasskeyRenamed
  | PasskeyRemoved
  | PasskeyUsed
  | PasskeySignCountRegressed

/** The account's passkeys after one of their events. */
export function evolvePasskeys(passkeys: Passkeys, event: PasskeyEvent): Passkeys {
  switch (event.type) {
    case 'PasskeyRegistered': {
      const d = event.data
      return {
        list: [
          ...passkeys.list,
          {
            id: d.passkey_id,
            name: d.name,
            credentialId: d.credential_id,
            publicKey: d.public_key,
            userHandle: d.user_handle,
            signCount: d.sign_count,
            transports: d.transports,
          },
        ],
        lastId: Math.max(passkeys.lastId, d.passkey_id),
        usedChallenges: withUsedChallenge(passkeys, d),
      }
    }
    case 'PasskeyRenamed':
      return {
        ...passkeys,
        list: passkeys.list.map((p) =>
          p.id === event.data.passkey_id ? { ...p, name: event.data.name } : p,
        ),
      }
    case 'PasskeyRemoved':
      return { ...passkeys, list: passkeys.list.filter((p) => p.id !== event.data.passkey_id) }
    case 'PasskeyUsed':
      return {
        ...passkeys,
        list: passkeys.list.map((p) =>
          p.id === event.data.passkey_id ? { ...p, signCount: event.data.sign_count } : p,
        ),
        usedChallenges: withUsedChallenge(passkeys, event.data),
      }
    case 'PasskeySignCountRegressed':
      return passkeys
  }
}
