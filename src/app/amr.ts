/**
 * Authentication methods (RFC 8176) as access tokens carry them in `amr`: `pwd` a password, `otp`
 * a TOTP or recovery code, `hwk` / `swk` a passkey whose key is bound to its device / synced
 * between devices, `user` the authenticator verified the user (PIN or biometrics).
 */

/** Whether the session was started by a passkey. */
export const isPasskeySession = (amr: readonly string[]): boolean =>
  amr.includes('hwk') || amr.includes('swk')

/**
 * Whether the session passed two factors: a password and a code, or a passkey that verified its
 * user (something the user has, unlocked by something they know or are).
 */
export const passedSecondFactor = (amr: readonly string[]): boolean =>
  amr.includes('otp') || (isPasskeySession(amr) && amr.includes('user'))
