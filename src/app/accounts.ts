/** Account commands as the API uses them: each loads, decides, appends and waits for the read models. */
import { accountDecider } from '../../domain/account.decider.ts'
import { DomainError } from '../../domain/errors.ts'
import type { Role } from '../../domain/event.ts'
import { passwordProblem } from '../../domain/password-policy.ts'
import type { EventStore } from '../eventstore/event-store.ts'
import type { ProjectionRunner } from '../readstore/projection-runner.ts'
import type { Queries, UserRow } from '../readstore/queries.ts'
import type { PasswordHasher } from '../security/passwords.ts'
import type { CommandContext, CommandHandler } from './command-handler.ts'
import { reserveId } from './id-sequence.ts'
import { accountStream } from './streams.ts'
import type { UniqueClaims } from './unique-claims.ts'

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
  now: () => Date
}

export function createAccounts(deps: AccountsDeps) {
  const { store, commands, runner, queries, claims, passwords, now } = deps

  async function register(input: NewAccount, context: CommandContext): Promise<UserRow> {
    const problem = passwordProblem(input.password, { username: input.username, email: input.email })
    if (problem) throw new DomainError('WEAK_PASSWORD', problem)
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
    const result = await commands.handle(
      accountStream(userId),
      accountDecider,
      {
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
      },
      { ...context, owner: userId },
    )
    await runner.waitFor(result.position)
    const user = queries.userById(userId)
    if (!user) throw new Error(`user ${userId} missing from the read model after registration`)
    return user
  }

  return { register }
}

export type Accounts = ReturnType<typeof createAccounts>
