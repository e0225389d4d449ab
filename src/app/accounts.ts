/** Account commands as the API uses them: each loads, decides, appends and waits for the read models. */
import { type AccountCommand, accountDecider } from '../../domain/account.decider.ts'
import { inSequence } from '../../domain/command-sequence.ts'
import { DomainError } from '../../domain/errors.ts'
import type { Role } from '../../domain/event.ts'
import { assertPasswordAllowed } from '../../domain/password-policy.ts'
import type { EventStore } from '../eventstore/event-store.ts'
import type { ProjectionRunner } from '../readstore/projection-runner.ts'
import type { Queries, UserRow } from '../readstore/queries.ts'
import type { PasswordHasher } from '../security/passwords.ts'
import type { CommandContext, CommandHandler } from './command-handler.ts'
import type { EmailVerification, IssuedToken } from './email-verification.ts'
import { reserveId } from './id-sequence.ts'
import { type LoginThrottle, throttleKey } from './login-throttle.ts'
import { accountStream } from './streams.ts'
import type { UniqueClaims } from './unique-claims.ts'

// A profile update is up to three intents (email, name, password), appended together.
const profileChanges = inSequence(accountDecider)

export type NewAccount = {
  username: string
  email: string
  password: string
  full_name?: string | null
  company_name?: string | null
  role: Role
}

export type AccountsDeps = {
  store: EventStore
  commands: CommandHandler
  runner: ProjectionRunner
  queries: Queries
  claims: UniqueClaims
  passwords: PasswordHasher
  throttle: LoginThrottle
  /** Mails the token that confirms a new account's address, or a changed one. */
  emailVerification: EmailVerification
  now: () => Date
}

export function createAccounts(deps: AccountsDeps) {
  const { store, commands, runner, queries, claims, passwords, throttle, emailVerification, now } = deps

  async function register(input: NewAccount, context: CommandContext): Promise<UserRow> {
    assertPasswordAllowed(input.password, { username: input.username, email: input.email })
    // Cheap early answer from the read model; the claims below are what actually decide.
    if (queries.userByUsername(input.username))
      throw new DomainError('USERNAME_TAKEN', 'Username already registered')
    if (queries.userByEmail(input.email)) throw new DomainError('EMAIL_TAKEN', 'Email already registered')

    const passwordHash = await passwords.hash(input.password)
    const userId = await reserveId(store, 'user', now())
    const usernameKey = claims.keyOf('username', input.username)
    const emailKey = claims.keyOf('email', input.email)
    if (!(await claims.claim('username', usernameKey, userId))) {
      throw new DomainError('USERNAME_TAKEN', 'Username already registered')
    }
    if (!(await claims.claim('email', emailKey, userId))) {
      await claims.release('username', usernameKey, userId)
      throw new DomainError('EMAIL_TAKEN', 'Email already registered')
    }
    // The account and the token that confirms its address, appended together.
    const verification = emailVerification.issue(userId)
    const register: AccountCommand = {
      type: 'Register',
      data: {
        user_id: userId,
        username: input.username.trim(),
        email: input.email.trim(),
        full_name: input.full_name ?? null,
        company_name: input.company_name ?? null,
        role: input.role,
        password_hash: passwordHash,
        username_key: usernameKey,
        email_key: emailKey,
      },
    }
    const result = await commands.handle(
      accountStream(userId),
      profileChanges,
      [register, emailVerification.request(verification)],
      { ...context, owner: userId },
    )
    await runner.waitFor(result.position)
    const user = queries.userById(userId)
    if (!user) throw new Error(`user ${userId} missing from the read model after registration`)
    emailVerification.mailAfter(result.events, user, verification, false)
    return user
  }

  async function updateProfile(
    userId: number,
    input: { email?: string; full_name?: string | null; password?: string; current_password?: string },
    context: CommandContext & { sessionId: number | null },
  ): Promise<UserRow> {
    const { state, revision } = await commands.load(accountStream(userId), accountDecider)
    if (state.status !== 'active' && state.status !== 'deactivated') {
      throw new DomainError('ACCOUNT_NOT_FOUND', 'User not found')
    }
    const changesEmail = input.email !== undefined && claims.keyOf('email', input.email) !== state.emailKey
    if (changesEmail || input.password !== undefined) {
      // A stolen access token must not become a password oracle: wrong current passwords are
      // throttled per session and count as failed logins of the account.
      await throttle.guard(
        throttleKey(`session-${context.sessionId}`, state.username),
        async () => {
          const ok =
            input.current_password !== undefined &&
            (await passwords.verify(state.passwordHash, input.current_password))
          if (ok) return
          const failed = await commands.handle(
            accountStream(userId),
            accountDecider,
            {
              type: 'RecordFailedLogin',
              data: { reason: 'password', now: now().getTime(), ip_address: null, user_agent: null },
            },
            { ...context, owner: userId },
          )
          await runner.waitFor(failed.position)
          throw new DomainError('INVALID_CREDENTIALS', 'Current password is incorrect')
        },
        () => true,
      )
    }
    const verified_at_revision = revision ?? 0
    let changePassword: AccountCommand | undefined
    if (input.password !== undefined) {
      assertPasswordAllowed(input.password, { username: state.username, email: input.email ?? state.email })
      changePassword = {
        type: 'ChangePassword',
        data: {
          password_hash: await passwords.hash(input.password),
          current_session_id: context.sessionId,
          verified_at_revision,
        },
      }
    }
    let email: { email: string; email_key: string } | undefined
    const intents: AccountCommand[] = []
    let verification: IssuedToken | undefined
    if (changesEmail && input.email !== undefined) {
      const key = claims.keyOf('email', input.email)
      const change = { email: input.email.trim(), email_key: key }
      verification = emailVerification.issue(userId)
      if (emailVerification.changeNeedsConfirmation) {
        // Only requested: the address is claimed when the token mailed to it is used.
        const holder = queries.userByEmail(input.email)
        if (holder && holder.id !== userId) throw new DomainError('EMAIL_TAKEN', 'Email already registered')
        intents.push(emailVerification.changeRequest(change, verification, verified_at_revision))
      } else {
        if (!(await claims.claim('email', key, userId)))
          throw new DomainError('EMAIL_TAKEN', 'Email already registered')
        email = change
        intents.push({ type: 'ChangeEmail', data: { ...email, verified_at_revision } })
        intents.push(emailVerification.request(verification))
      }
    }
    if (input.full_name !== undefined)
      intents.push({ type: 'ChangeFullName', data: { full_name: input.full_name } })
    if (changePassword) intents.push(changePassword)
    try {
      const result = await commands.handle(accountStream(userId), profileChanges, intents, {
        ...context,
        owner: userId,
      })
      if (email) await claims.release('email', state.emailKey, userId)
      emailVerification.mailAfter(result.events, state, verification, true)
      await runner.waitFor(result.position)
    } catch (error) {
      if (email) await claims.release('email', email.email_key, userId)
      throw error
    }
    return mustFind(userId)
  }

  /** Administration commands, recorded with the acting admin; each waits until the read models show it. */
  async function administer(userId: number, command: AccountCommand, context: CommandContext): Promise<void> {
    const result = await commands.handle(accountStream(userId), accountDecider, command, {
      ...context,
      owner: userId,
    })
    await runner.waitFor(result.position)
  }

  function mustFind(userId: number): UserRow {
    const user = queries.userById(userId)
    if (!user) throw new DomainError('ACCOUNT_NOT_FOUND', 'User not found')
    return user
  }

  return { register, updateProfile, administer, mustFind }
}

export type Accounts = ReturnType<typeof createAccounts>
