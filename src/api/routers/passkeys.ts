/**
 * Passkeys (WebAuthn), over tRPC as `auth.passkeys.*` and REST under `/auth/passkeys`: register
 * (options, then the attestation), list, rename, remove, log in (options, then the assertion);
 * and `DELETE /auth/password`, which makes an account passwordless.
 */
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server'
import * as z from 'zod'
import {
  Message,
  Passkey,
  PasskeyIdPath,
  PasskeyLogin,
  PasskeyLoginOptionsRequest,
  PasskeyRegistration,
  PasskeyRename,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  Token,
} from '../schemas.ts'
import { limitedProcedure, router, userProcedure } from '../trpc.ts'

const tags = ['passkeys']

const passkeys = router({
  registerOptions: userProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/passkeys/register/options',
        tags,
        protect: true,
        summary: 'WebAuthn creation options for navigator.credentials.create(), with a 5-minute challenge',
        errorResponses: { 403: 'Two-factor authentication is on and this session has not passed it' },
      },
    })
    .output(PublicKeyCredentialCreationOptionsJSON)
    .mutation(({ ctx }) => ctx.runtime.passkeys.registrationOptions(ctx.principal)),

  register: userProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/passkeys/register',
        tags,
        protect: true,
        summary: 'Register the passkey of an attestation response (JSON, as PublicKeyCredential.toJSON())',
        errorResponses: {
          400: 'Invalid, expired or used challenge, wrong origin or RP id, bad attestation',
          403: 'Two-factor authentication is on and this session has not passed it',
          409: 'Passkey already registered, or too many',
        },
      },
    })
    .input(PasskeyRegistration)
    .output(Passkey)
    .mutation(({ input, ctx }) =>
      ctx.runtime.passkeys.register(
        ctx.principal,
        input.response as RegistrationResponseJSON,
        input.name ?? null,
      ),
    ),

  list: userProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/auth/passkeys',
        tags,
        protect: true,
        summary: "The caller's passkeys",
      },
    })
    .output(z.array(Passkey))
    .query(({ ctx }) => ctx.runtime.passkeys.list(ctx.principal.userId)),

  rename: userProcedure
    .meta({
      openapi: {
        method: 'PUT',
        path: '/auth/passkeys/{passkey_id}',
        tags,
        protect: true,
        summary: 'Rename a passkey',
        errorResponses: { 404: 'Not a passkey of the caller' },
      },
    })
    .input(PasskeyIdPath.extend(PasskeyRename.shape))
    .output(Passkey)
    .mutation(({ input, ctx }) =>
      ctx.runtime.passkeys.rename(ctx.principal.userId, input.passkey_id, input.name),
    ),

  remove: userProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/auth/passkeys/{passkey_id}',
        tags,
        protect: true,
        summary: 'Remove a passkey',
        errorResponses: {
          404: 'Not a passkey of the caller',
          409: 'The last passkey of an account without a password',
        },
      },
    })
    .input(PasskeyIdPath)
    .output(Message)
    .mutation(async ({ input, ctx }) => {
      await ctx.runtime.passkeys.remove(ctx.principal, input.passkey_id)
      return { message: 'Passkey removed' }
    }),

  loginOptions: limitedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/passkeys/login/options',
        tags,
        summary:
          'WebAuthn request options for navigator.credentials.get(); without a username, any discoverable passkey',
        errorResponses: { 429: 'Rate limited' },
      },
    })
    .input(PasskeyLoginOptionsRequest.optional())
    .output(PublicKeyCredentialRequestOptionsJSON)
    .mutation(({ input, ctx }) => ctx.runtime.passkeys.loginOptions(input?.username)),

  login: limitedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/passkeys/login',
        tags,
        summary:
          'Log in with an assertion response: amr ["hwk"] or ["swk"], plus "user" when the authenticator verified the user (which satisfies 2FA)',
        errorResponses: {
          401: 'Unknown passkey, bad signature, invalid or used challenge, sign counter went backwards',
          403: 'Deactivated, or 2FA is on and the authenticator did not verify the user',
          423: 'Locked',
          429: 'Rate limited',
        },
      },
    })
    .input(PasskeyLogin)
    .output(Token)
    .mutation(({ input, ctx }) =>
      ctx.runtime.passkeys.login(input.response as AuthenticationResponseJSON, ctx.request.client),
    ),
})

export const passkeysRouter = router({
  passkeys,

  removePassword: userProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/auth/password',
        tags,
        protect: true,
        summary: 'Make the account passwordless: only from a session a passkey started; other sessions end',
        errorResponses: {
          400: 'The account has no password',
          403: 'This session was not started by a passkey',
          409: 'The account has no passkey',
        },
      },
    })
    .output(Message)
    .mutation(async ({ ctx }) => {
      await ctx.runtime.passkeys.removePassword(ctx.principal)
      return { message: 'Password removed: log in with your passkeys' }
    }),
})
