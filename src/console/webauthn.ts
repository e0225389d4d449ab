/**
 * WebAuthn between the service's JSON (binary fields as base64url, as `@simplewebauthn/server`
 * writes and reads them) and the browser's `navigator.credentials`, which wants and gives
 * ArrayBuffers. Written out rather than through `PublicKeyCredential.parse…FromJSON` and
 * `toJSON()`, which older browsers lack: one path, the one the browser test runs.
 */

type Json = Record<string, unknown>
type Descriptor = { id: string; type: 'public-key'; transports?: AuthenticatorTransport[] }

function fromBase64url(text: string): ArrayBuffer {
  const base64 = text.replaceAll('-', '+').replaceAll('_', '/')
  const binary = atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '='))
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes.buffer
}

function toBase64url(buffer: ArrayBuffer): string {
  let binary = ''
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte)
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}

const descriptors = (list: Descriptor[] | undefined): PublicKeyCredentialDescriptor[] | undefined =>
  list?.map((d) => ({ ...d, id: fromBase64url(d.id) }))

/** Says "cancelled" in words when the person dismissed the browser's dialog. */
function explain(error: unknown): Error {
  if (error instanceof DOMException && error.name === 'NotAllowedError')
    return new Error('The passkey request was cancelled or timed out.')
  if (error instanceof DOMException && error.name === 'InvalidStateError')
    return new Error('This device already holds a passkey for your account.')
  return error instanceof Error ? error : new Error(String(error))
}

export const passkeysSupported = (): boolean =>
  typeof window.PublicKeyCredential === 'function' && Boolean(navigator.credentials)

/** Runs the browser's ceremony; a dismissed dialog becomes a sentence. */
async function ceremony(run: () => Promise<Credential | null>): Promise<PublicKeyCredential> {
  try {
    const credential = await run()
    if (!credential) throw new Error('The browser returned no passkey.')
    return credential as PublicKeyCredential
  } catch (error) {
    throw explain(error)
  }
}

/** The fields of a credential's JSON that registration and login share. */
const credentialJson = (credential: PublicKeyCredential, response: Json): Json => ({
  id: credential.id,
  rawId: toBase64url(credential.rawId),
  type: credential.type,
  authenticatorAttachment: credential.authenticatorAttachment ?? undefined,
  clientExtensionResults: credential.getClientExtensionResults(),
  response,
})

/** Creates a passkey from the service's creation options; the attestation as JSON for the service. */
export async function createPasskey(options: Json): Promise<Json> {
  const user = options.user as { id: string; name: string; displayName: string }
  const publicKey = {
    ...options,
    challenge: fromBase64url(options.challenge as string),
    user: { ...user, id: fromBase64url(user.id) },
    excludeCredentials: descriptors(options.excludeCredentials as Descriptor[] | undefined),
  } as PublicKeyCredentialCreationOptions
  const credential = await ceremony(() => navigator.credentials.create({ publicKey }))
  const response = credential.response as AuthenticatorAttestationResponse
  return credentialJson(credential, {
    clientDataJSON: toBase64url(response.clientDataJSON),
    attestationObject: toBase64url(response.attestationObject),
    transports: response.getTransports?.() ?? [],
  })
}

/** Signs the service's challenge with a passkey; the assertion as JSON for the service. */
export async function usePasskey(options: Json): Promise<Json> {
  const publicKey = {
    ...options,
    challenge: fromBase64url(options.challenge as string),
    allowCredentials: descriptors(options.allowCredentials as Descriptor[] | undefined),
  } as PublicKeyCredentialRequestOptions
  const credential = await ceremony(() => navigator.credentials.get({ publicKey }))
  const response = credential.response as AuthenticatorAssertionResponse
  return credentialJson(credential, {
    clientDataJSON: toBase64url(response.clientDataJSON),
    authenticatorData: toBase64url(response.authenticatorData),
    signature: toBase64url(response.signature),
    userHandle: response.userHandle ? toBase64url(response.userHandle) : undefined,
  })
}
