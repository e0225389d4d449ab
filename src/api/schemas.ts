/**
 * The contract's schemas (API.md), named as there: the `id` in `.meta()` is the name under
 * `components.schemas` of the OpenAPI document.
 */
import * as z from 'zod'
import { ROLES } from '../../domain/event.ts'

export const Role = z.enum(ROLES as ['user', 'vendor', 'admin', 'auditor'])
const Username = z
  .string()
  .min(3)
  .max(32)
  .regex(/^[A-Za-z0-9_.-]+$/, 'may contain only letters, digits, "_", "." and "-"')
const Email = z.email({ message: 'value is not a valid email address' }).max(254)
const Password = z.string().min(8).max(128)
const FullName = z.string().max(100).nullish()
const Timestamp = z.string().meta({ format: 'date-time' })
/** Ids are positive integers; in paths only plain decimal digits count (not `1e3`, `0x10` or `1.0`). */
const Id = z.preprocess(
  (value) => (typeof value === 'string' && /^[1-9][0-9]{0,15}$/.test(value) ? Number(value) : value),
  z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
)

export const UserCreate = z
  .object({ username: Username, email: Email, password: Password, full_name: FullName })
  .meta({ id: 'UserCreate' })

export const UserResponse = z
  .object({
    id: z.number().int(),
    username: z.string(),
    email: z.string(),
    full_name: z.string().nullable(),
    role: Role,
    is_active: z.boolean(),
    is_locked: z.boolean(),
    is_2fa_enabled: z.boolean(),
    created_at: Timestamp,
    /** Whether `email` was confirmed with a token mailed to it. */
    email_verified: z.boolean(),
    /** A change of address awaiting confirmation (REQUIRE_VERIFIED_EMAIL=1), or null. */
    pending_email: z.string().nullable(),
  })
  .meta({ id: 'UserResponse' })

export const LoginForm = z
  .object({
    grant_type: z
      .string()
      .regex(/^password$/, 'grant_type must be "password"')
      .nullish(),
    username: z.string().min(1).max(254),
    password: z.string().min(1).max(1024),
    scope: z.string().max(1000).optional(),
    client_id: z.string().max(200).nullish(),
    client_secret: z.string().max(200).nullish(),
  })
  .meta({ id: 'Body_login_for_access_token_auth_login_post' })

export const Token = z
  .object({
    access_token: z.string(),
    token_type: z.literal('bearer'),
    refresh_token: z.string(),
    expires_in: z.number().int(),
  })
  .meta({ id: 'Token' })

export const TwoFactorChallenge = z
  .object({
    access_token: z.string(),
    token_type: z.literal('bearer'),
    requires_2fa: z.literal(true),
    expires_in: z.number().int(),
  })
  .meta({ id: 'TwoFactorChallenge' })

export const LoginResult = z.union([Token, TwoFactorChallenge])

export const PasswordResetRequest = z.object({ email: Email }).meta({ id: 'PasswordResetRequest' })
export const PasswordReset = z
  .object({ token: z.string().min(1).max(8192), new_password: Password })
  .meta({ id: 'PasswordReset' })
export const VerifyEmailRequest = z
  // Generous like TokenRefresh: a malformed token is an invalid one (400), not a validation error.
  .object({ token: z.string().min(1).max(8192) })
  .meta({ id: 'VerifyEmailRequest' })
export const TokenRefresh = z
  // Generous on purpose: a wrong kind of token (an access token, say) is an invalid refresh
  // token, 401, not a validation error.
  .object({ refresh_token: z.string().min(1).max(8192) })
  .meta({ id: 'TokenRefresh' })
export const Message = z.looseObject({ message: z.string() }).meta({ id: 'Message' })
export const RecoveryCodesMessage = Message.extend({ recovery_codes: z.array(z.string()) })
export const Enable2FARequest = z
  .object({
    code: z
      .string()
      .min(6)
      .max(32)
      .regex(/^[0-9A-Za-z -]+$/, 'invalid code format'),
  })
  .meta({ id: 'Enable2FARequest' })
export const TwoFactorSetup = z
  .object({ secret: z.string(), otpauth_url: z.string(), qr_svg: z.string() })
  .meta({ id: 'TwoFactorSetup' })

export const SessionResponse = z
  .object({
    id: z.number().int(),
    created_at: Timestamp,
    last_used_at: Timestamp,
    expires_at: Timestamp,
    ip_address: z.string().nullable(),
    user_agent: z.string().nullable(),
    is_current: z.boolean(),
  })
  .meta({ id: 'SessionResponse' })

export const UserUpdate = z
  .object({
    email: Email.optional(),
    full_name: FullName,
    password: Password.optional(),
    current_password: z.string().max(1024).optional(),
  })
  .meta({ id: 'UserUpdate' })

export const RoleUpdate = z.object({ user_id: Id, role: Role }).meta({ id: 'RoleUpdate' })
export const LockAccountRequest = z
  .object({
    user_id: Id,
    reason: z.string().max(500).nullish(),
    duration_minutes: z.number().int().min(1).max(10_000_000).nullish(),
  })
  .meta({ id: 'LockAccountRequest' })
export const UnlockAccountRequest = z.object({ user_id: Id }).meta({ id: 'UnlockAccountRequest' })
export const AdminCreate = z
  .object({ username: Username, email: Email, password: Password, full_name: FullName })
  .meta({ id: 'AdminCreate' })
export const AdminLogin = z
  .object({ username: z.string().min(1).max(254), password: z.string().min(1).max(1024) })
  .meta({ id: 'AdminLogin' })
export const VendorCreate = z
  .object({
    username: Username,
    email: Email,
    password: Password,
    company_name: z.string().min(1).max(200),
    full_name: FullName,
  })
  .meta({ id: 'VendorCreate' })
export const VendorResponse = z
  .object({
    id: z.number().int(),
    username: z.string(),
    email: z.string(),
    company_name: z.string(),
    is_active: z.boolean(),
    created_at: Timestamp,
  })
  .meta({ id: 'VendorResponse' })
export const VendorLogin = z
  .object({ username: z.string().min(1).max(254), password: z.string().min(1).max(1024) })
  .meta({ id: 'VendorLogin' })
export const ChatbotRequest = z
  .looseObject({ message: z.string().min(1).max(2000) })
  .meta({ id: 'ChatbotRequest' })
export const ChatbotResponse = z
  .object({ reply: z.string(), intent: z.string(), suggested_endpoints: z.array(z.string()) })
  .meta({ id: 'ChatbotResponse' })

export const AuditEvent = z
  .object({
    stream: z.string(),
    revision: z.number().int(),
    type: z.string(),
    occurred_at: Timestamp,
    actor_id: z.number().int().nullable(),
    data: z.record(z.string(), z.unknown()),
    hash: z.string(),
  })
  .meta({ id: 'AuditEvent' })
export const ActivityEvent = z
  .object({
    type: z.string(),
    occurred_at: Timestamp,
    ip_address: z.string().nullable(),
    user_agent: z.string().nullable(),
    session_id: z.number().int().nullable(),
  })
  .meta({ id: 'ActivityEvent' })

export const ValidationError = z
  .object({
    loc: z.array(z.union([z.string(), z.number()])),
    msg: z.string(),
    type: z.string(),
  })
  .meta({ id: 'ValidationError' })
export const HTTPValidationError = z
  .object({ detail: z.array(ValidationError) })
  .meta({ id: 'HTTPValidationError' })

export const UserIdPath = z.object({ user_id: Id })
export const SessionIdPath = z.object({ session_id: Id })

// Passkeys (WebAuthn). The credential JSON is WebAuthn Level 3's (what @simplewebauthn/browser and
// `PublicKeyCredential.toJSON()` give): binary fields base64url, bounded so the body limit holds.
const Base64Url = z
  .string()
  .max(16_384)
  .regex(/^[A-Za-z0-9_-]*$/, 'must be base64url')
const CredentialId = Base64Url.min(1).max(1366)
const PasskeyName = z.string().trim().min(1).max(64)
const ClientExtensionResults = z.record(z.string(), z.unknown())
const AuthenticatorAttachment = z.enum(['platform', 'cross-platform'])

export const Passkey = z
  .object({
    id: z.number().int(),
    name: z.string(),
    created_at: Timestamp,
    last_used_at: Timestamp.nullable(),
  })
  .meta({ id: 'Passkey' })
export const RegistrationResponseJSON = z
  .object({
    id: CredentialId,
    rawId: CredentialId,
    type: z.literal('public-key'),
    response: z.object({
      clientDataJSON: Base64Url.min(1),
      attestationObject: Base64Url.min(1),
      transports: z.array(z.string().max(32)).max(16).optional(),
      authenticatorData: Base64Url.optional(),
      publicKey: Base64Url.optional(),
      publicKeyAlgorithm: z.number().int().optional(),
    }),
    authenticatorAttachment: AuthenticatorAttachment.optional(),
    clientExtensionResults: ClientExtensionResults.default({}),
  })
  .meta({ id: 'RegistrationResponseJSON' })
export const PasskeyRegistration = z
  .object({ response: RegistrationResponseJSON, name: PasskeyName.nullish() })
  .meta({ id: 'PasskeyRegistration' })
export const AuthenticationResponseJSON = z
  .object({
    id: CredentialId,
    rawId: CredentialId,
    type: z.literal('public-key'),
    response: z.object({
      clientDataJSON: Base64Url.min(1),
      authenticatorData: Base64Url.min(1),
      signature: Base64Url.min(1),
      userHandle: Base64Url.max(128).nullish(),
    }),
    authenticatorAttachment: AuthenticatorAttachment.optional(),
    clientExtensionResults: ClientExtensionResults.default({}),
  })
  .meta({ id: 'AuthenticationResponseJSON' })
export const PasskeyLogin = z.object({ response: AuthenticationResponseJSON }).meta({ id: 'PasskeyLogin' })
export const PasskeyLoginOptionsRequest = z
  .object({ username: z.string().min(1).max(254).optional() })
  .meta({ id: 'PasskeyLoginOptionsRequest' })
export const PasskeyRename = z.object({ name: PasskeyName }).meta({ id: 'PasskeyRename' })
const CredentialDescriptor = z.object({
  id: z.string(),
  type: z.string(),
  transports: z.array(z.string()).optional(),
})
export const PublicKeyCredentialCreationOptionsJSON = z
  .object({
    challenge: z.string(),
    rp: z.object({ name: z.string(), id: z.string().optional() }),
    user: z.object({ id: z.string(), name: z.string(), displayName: z.string() }),
    pubKeyCredParams: z.array(z.object({ alg: z.number().int(), type: z.string() })),
    timeout: z.number().int().optional(),
    excludeCredentials: z.array(CredentialDescriptor).optional(),
    authenticatorSelection: z
      .object({
        authenticatorAttachment: z.string().optional(),
        requireResidentKey: z.boolean().optional(),
        residentKey: z.string().optional(),
        userVerification: z.string().optional(),
      })
      .optional(),
    hints: z.array(z.string()).optional(),
    attestation: z.string().optional(),
    extensions: z.object({ credProps: z.boolean().optional() }).optional(),
  })
  .meta({ id: 'PublicKeyCredentialCreationOptionsJSON' })
export const PublicKeyCredentialRequestOptionsJSON = z
  .object({
    challenge: z.string(),
    rpId: z.string().optional(),
    timeout: z.number().int().optional(),
    allowCredentials: z.array(CredentialDescriptor).optional(),
    userVerification: z.string().optional(),
    hints: z.array(z.string()).optional(),
  })
  .meta({ id: 'PublicKeyCredentialRequestOptionsJSON' })
export const PasskeyIdPath = z.object({ passkey_id: Id })
