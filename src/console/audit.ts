/**
 * The auditors' pages: a user's history as a timeline, checked event by event (the service's
 * chain check, and in this browser each event's RFC 9162 inclusion proof against a signed tree
 * head whose signature is verified here with the JWKS), the latest signed checkpoint, and the
 * verification of a checkpoint saved earlier.
 */
import { api, apiResponse } from './api.ts'
import {
  badge,
  button,
  type Child,
  clear,
  download,
  field,
  form,
  h,
  input,
  messageArea,
  time,
} from './dom.ts'
import type { Page, PageContext } from './page.ts'

type Inclusion = { leaf_index: number; tree_size: number; audit_path: string[] }
type AuditEvent = {
  stream: string
  revision: number
  type: string
  occurred_at: string
  actor_id: number | null
  data: Record<string, unknown>
  hash: string
  inclusion?: Inclusion | null
}
type LogBreak = {
  stream_id: string | null
  revision: number | null
  position: string | null
  leaf_index: number
  reason: string
} | null
type VerifyResult = {
  ok: boolean
  streams_checked: number
  events_checked: number
  tree_size: number
  from_leaf: number
  first_broken: LogBreak
}
type CheckpointResult = {
  ok: boolean
  tree_size?: number
  streams_checked?: number
  first_broken: { stream?: string; revision?: number; tree_size?: number; reason: string } | null
}
type TreeHead = { tree_size: number; root_hash: string; issued_at: string }

const REASONS: Record<string, string> = {
  hash_mismatch: 'its content no longer matches its hash (rewritten)',
  prev_hash_mismatch: 'its link to the previous event is broken',
  missing_events: 'events are missing',
  differs_from_tree: 'it differs from the Merkle tree built when it was written',
  tree_differs_from_verified_head: 'the tree no longer extends the last verified tree head',
  differs_from_tree_head: 'the log no longer extends this tree head',
  log_shorter_than_tree_head: 'the log is shorter than this tree head',
  differs_from_checkpoint: 'a stream differs from this checkpoint',
}
const reasonText = (reason: string): string => REASONS[reason] ?? reason.replaceAll('_', ' ')

// --- JWS and Merkle proofs, checked in the browser ---

function base64urlBytes(text: string): Uint8Array<ArrayBuffer> {
  const base64 = text.replaceAll('-', '+').replaceAll('_', '/')
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4))
  return Uint8Array.from(binary, (c) => c.charCodeAt(0))
}

export function decodeJws(
  jws: string,
): { header: Record<string, unknown>; payload: Record<string, unknown> } | null {
  const parts = jws.trim().split('.')
  if (parts.length !== 3) return null
  try {
    const text = (part: string) => new TextDecoder().decode(base64urlBytes(part))
    return { header: JSON.parse(text(parts[0])), payload: JSON.parse(text(parts[1])) }
  } catch {
    return null
  }
}

/** Is the JWS signed by a key of the service's JWKS? (EdDSA/Ed25519 or ES256, with WebCrypto.) */
async function jwsSignatureValid(jws: string): Promise<{ valid: boolean; kid: string | null }> {
  const decoded = decodeJws(jws)
  const kid = typeof decoded?.header.kid === 'string' ? decoded.header.kid : null
  if (!decoded || !kid) return { valid: false, kid }
  const jwks = await api<{ keys: (JsonWebKey & { kid?: string })[] }>('GET', '/.well-known/jwks.json')
  const jwk = jwks.keys.find((k) => k.kid === kid)
  if (!jwk) return { valid: false, kid }
  const algorithm =
    decoded.header.alg === 'ES256'
      ? { key: { name: 'ECDSA', namedCurve: 'P-256' }, verify: { name: 'ECDSA', hash: 'SHA-256' } }
      : { key: { name: 'Ed25519' }, verify: { name: 'Ed25519' } }
  try {
    const key = await crypto.subtle.importKey('jwk', jwk, algorithm.key, false, ['verify'])
    const [header, payload, signature] = jws.trim().split('.')
    const valid = await crypto.subtle.verify(
      algorithm.verify,
      key,
      base64urlBytes(signature),
      new TextEncoder().encode(`${header}.${payload}`),
    )
    return { valid, kid }
  } catch {
    return { valid: false, kid }
  }
}

const hexBytes = (hex: string): Uint8Array<ArrayBuffer> =>
  Uint8Array.from(hex.match(/../g) ?? [], (byte) => Number.parseInt(byte, 16))
const toHex = (bytes: ArrayBuffer): string =>
  [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('')

async function sha256(prefix: number, ...parts: Uint8Array[]): Promise<Uint8Array<ArrayBuffer>> {
  const input = new Uint8Array(1 + parts.reduce((n, p) => n + p.length, 0))
  input[0] = prefix
  let offset = 1
  for (const part of parts) {
    input.set(part, offset)
    offset += part.length
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', input))
}

/** RFC 9162 §2.1.3.2: does the event's hash lead, along its audit path, to the tree head's root? */
async function included(eventHash: string, proof: Inclusion, rootHex: string): Promise<boolean> {
  if (!/^[0-9a-f]{64}$/i.test(eventHash) || proof.leaf_index >= proof.tree_size) return false
  let fn = proof.leaf_index
  let sn = proof.tree_size - 1
  let r = await sha256(0x00, hexBytes(eventHash))
  for (const hex of proof.audit_path) {
    if (sn === 0) return false
    const p = hexBytes(hex)
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(0x01, p, r)
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2)
        sn = Math.floor(sn / 2)
      }
    } else {
      r = await sha256(0x01, r, p)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  return sn === 0 && toHex(r.buffer) === rootHex.toLowerCase()
}

// --- a user's history ---

function value(raw: unknown): Child {
  if (raw === '[erased]') return h('span', { class: 'erased' }, 'erased')
  if (raw === '[redacted]')
    return h(
      'span',
      { class: 'redacted', title: 'A secret: auditors see that it changed, never its value' },
      'secret',
    )
  if (raw === null) return h('span', { class: 'null' }, 'none')
  if (typeof raw === 'object') return h('code', null, JSON.stringify(raw))
  return String(raw)
}

const humanType = (type: string): string => type.replace(/([a-z])([A-Z0-9])/g, '$1 $2')

async function historyPage(context: PageContext): Promise<Child[]> {
  const id = Number(context.params[0])
  const { body, headers } = await apiResponse('GET', `/admin/users/${id}/history`, {
    query: { proof: 'true' },
  })
  const events = body as AuditEvent[]
  const treeHead = headers.get('x-tree-head')
  const summary = h('div', { id: 'verify-summary', role: 'status' })
  const statusCells = new Map<AuditEvent, HTMLElement>()
  const items = new Map<AuditEvent, HTMLElement>()

  const actor = (actorId: number | null): Child => {
    if (actorId === null) return 'the service'
    if (actorId === id) return 'the user'
    return h('a', { href: `#/users/${actorId}` }, `user ${actorId}`)
  }

  const verify = async (): Promise<void> => {
    clear(summary, h('p', null, 'Verifying…'))
    for (const cell of statusCells.values()) clear(cell, badge('checking…', 'info'))
    const result = await api<VerifyResult>('GET', '/admin/audit/verify', { query: { full: 'true' } })
    const broken = result.first_broken
    const head = treeHead ? decodeJws(treeHead) : null
    const signature = treeHead ? await jwsSignatureValid(treeHead) : { valid: false, kid: null }
    const root = (head?.payload as TreeHead | undefined)?.root_hash ?? ''
    let tampered = 0
    let notIncluded = 0
    for (const event of events) {
      const cell = statusCells.get(event) as HTMLElement
      const item = items.get(event) as HTMLElement
      const leaf = event.inclusion?.leaf_index
      const inTree =
        event.inclusion && signature.valid ? await included(event.hash, event.inclusion, root) : false
      if (!inTree) notIncluded++
      const chain: Child =
        broken && broken.stream_id === event.stream && broken.revision === event.revision
          ? badge(`tampered: ${reasonText(broken.reason)}`, 'bad')
          : broken && leaf !== undefined && leaf > broken.leaf_index
            ? badge('not checked: the check stops at the first break', 'warn')
            : badge('chain intact', 'ok')
      const isBroken = broken && broken.stream_id === event.stream && broken.revision === event.revision
      if (isBroken) tampered++
      item.classList.toggle('broken', Boolean(isBroken))
      clear(
        cell,
        chain,
        ' ',
        event.inclusion
          ? inTree
            ? badge(`in signed tree head (leaf ${event.inclusion.leaf_index})`, 'ok')
            : badge('inclusion proof fails', 'bad')
          : badge('not yet in a signed tree head', 'warn'),
      )
    }
    const headSize = (head?.payload as TreeHead | undefined)?.tree_size
    clear(
      summary,
      result.ok && tampered === 0 && notIncluded === 0
        ? h(
            'p',
            { class: 'message ok' },
            `Verified: the hash chains of all ${result.streams_checked} streams (${result.events_checked} events) are intact, and each of these ${events.length} events is included in the signed tree head of ${headSize} events (signature checked in this browser, key ${signature.kid}).`,
          )
        : h(
            'p',
            { class: 'message error' },
            broken
              ? `Tampering found: ${broken.stream_id ?? 'the log'}${broken.revision !== null ? ` at revision ${broken.revision}` : ''} — ${reasonText(broken.reason)}.`
              : 'The hash chains are intact.',
            notIncluded > 0
              ? ` ${notIncluded} event(s) could not be proved to be in the signed tree head.`
              : null,
            !signature.valid ? ' The tree head’s signature did not verify.' : null,
          ),
    )
  }

  const list = h(
    'ol',
    { class: 'timeline history', id: 'history' },
    events.map((event) => {
      const status = h('p', { class: 'verification' }, badge('not verified yet', 'info'))
      const item = h(
        'li',
        { 'data-stream': event.stream, 'data-revision': event.revision },
        h('span', { class: 'icon', 'aria-hidden': 'true' }, event.stream.startsWith('session-') ? '⇄' : '●'),
        h(
          'div',
          null,
          h('p', { class: 'what' }, humanType(event.type)),
          h(
            'p',
            { class: 'meta' },
            time(event.occurred_at),
            ' · by ',
            actor(event.actor_id),
            ' · ',
            h('code', null, `${event.stream}@${event.revision}`),
            ' · hash ',
            h('code', { title: event.hash }, `${event.hash.slice(0, 12)}…`),
          ),
          Object.keys(event.data).length > 0
            ? h(
                'dl',
                { class: 'data' },
                Object.entries(event.data).map(([key, raw]) => [
                  h('dt', null, key),
                  h('dd', null, value(raw)),
                ]),
              )
            : null,
          status,
        ),
      )
      statusCells.set(event, status)
      items.set(event, item)
      return item
    }),
  )
  const error = messageArea('alert')
  return [
    h('h1', { tabindex: '-1' }, `History of user ${id}`),
    h(
      'section',
      { class: 'card' },
      h(
        'p',
        null,
        `${events.length} events from the account’s stream and its sessions’ streams, in commit order. Personal data of a deleted account reads “erased”; secrets read “secret”.`,
      ),
      h(
        'div',
        { class: 'actions' },
        button(
          'Verify',
          async () => {
            error.show(null)
            await verify().catch((failure: Error) => error.show(failure.message))
          },
          { id: 'verify-history' },
        ),
        h('a', { href: `#/users/${id}`, class: 'button secondary' }, 'Account'),
      ),
      error.element,
      summary,
    ),
    h('section', { class: 'card' }, events.length === 0 ? h('p', null, 'No events.') : list),
  ]
}

// --- the log: verify, checkpoints ---

function checkpointView(jws: string): Child {
  const decoded = decodeJws(jws)
  const payload = decoded?.payload as Partial<TreeHead> | undefined
  return h(
    'dl',
    { class: 'details', id: 'checkpoint-details' },
    h('dt', null, 'Events (tree size)'),
    h('dd', null, String(payload?.tree_size ?? '—')),
    h('dt', null, 'Root hash'),
    h('dd', null, h('code', { class: 'wrap' }, String(payload?.root_hash ?? '—'))),
    h('dt', null, 'Issued'),
    h('dd', null, time(payload?.issued_at as string | undefined)),
    h('dt', null, 'Signing key'),
    h('dd', null, h('code', null, String(decoded?.header.kid ?? '—'))),
  )
}

function checkpointResult(result: CheckpointResult): Child {
  if (result.ok) {
    return h(
      'p',
      { class: 'message ok' },
      result.tree_size !== undefined
        ? `Valid: signed by the service, and today’s log extends it (its ${result.tree_size} events are unchanged).`
        : `Valid: all ${result.streams_checked} streams still match this checkpoint.`,
    )
  }
  const broken = result.first_broken
  return h(
    'p',
    { class: 'message error' },
    `Not extended: ${broken ? reasonText(broken.reason) : 'unknown reason'}${broken?.stream ? ` (${broken.stream}@${broken.revision})` : ''}. History written before this checkpoint was changed.`,
  )
}

async function auditPage(context: PageContext): Promise<Child[]> {
  const verifyOut = h('div', { id: 'log-verify-result', role: 'status' })
  const verifyError = messageArea('alert')
  const { checkpoint } = await api<{ checkpoint: string }>('GET', '/admin/audit/checkpoint')
  const size = (decodeJws(checkpoint)?.payload as TreeHead | undefined)?.tree_size ?? 0

  const file = h('input', { type: 'file', accept: '.jws,.txt,.json,text/plain', id: 'checkpoint-file' })
  const pasted = h('textarea', { name: 'checkpoint', rows: 3, spellcheck: 'false', id: 'checkpoint-text' })
  const checkOut = h('div', { id: 'checkpoint-verify-result', role: 'status' })
  const historyId = input({
    name: 'user_id',
    type: 'number',
    min: 1,
    step: 1,
    inputmode: 'numeric',
    required: true,
  })

  return [
    h('h1', { tabindex: '-1' }, 'Audit'),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'verify-title' },
      h('h2', { id: 'verify-title' }, 'Verify the whole log'),
      h(
        'p',
        null,
        'Re-checks every event against its stream’s hash chain and the Merkle tree over all events.',
      ),
      button(
        'Verify the log',
        async () => {
          verifyError.show(null)
          clear(verifyOut, h('p', null, 'Verifying…'))
          try {
            const result = await api<VerifyResult>('GET', '/admin/audit/verify', { query: { full: 'true' } })
            const broken = result.first_broken
            clear(
              verifyOut,
              result.ok
                ? h(
                    'p',
                    { class: 'message ok' },
                    `Intact: ${result.events_checked} events in ${result.streams_checked} streams checked.`,
                  )
                : h(
                    'p',
                    { class: 'message error' },
                    `Tampering found at ${broken?.stream_id ?? 'position'} ${broken?.revision !== null ? `revision ${broken?.revision}` : ''} (position ${broken?.position}): ${reasonText(broken?.reason ?? '')}.`,
                    broken?.stream_id?.startsWith('user-')
                      ? [
                          ' ',
                          h('a', { href: `#/audit/users/${broken.stream_id.slice(5)}` }, 'See that history'),
                        ]
                      : null,
                  ),
            )
          } catch (failure) {
            clear(verifyOut)
            verifyError.show((failure as Error).message)
          }
        },
        { id: 'verify-log' },
      ),
      verifyError.element,
      verifyOut,
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'checkpoint-title' },
      h('h2', { id: 'checkpoint-title' }, 'Latest signed checkpoint'),
      h(
        'p',
        null,
        'A signed tree head: keep it somewhere the service cannot write; verifying it later proves that nothing written before it was changed.',
      ),
      checkpointView(checkpoint),
      button(
        'Download checkpoint',
        () => download(`checkpoint-${size}.jws`, `${checkpoint}\n`, 'application/jose'),
        {
          id: 'download-checkpoint',
        },
      ),
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'upload-title' },
      h('h2', { id: 'upload-title' }, 'Verify a saved checkpoint'),
      form(
        { id: 'verify-checkpoint-form' },
        [
          field('Checkpoint file', file),
          field('…or paste it', pasted),
          h('button', { type: 'submit' }, 'Verify checkpoint'),
        ],
        async () => {
          clear(checkOut)
          const text = (file.files?.[0] ? await file.files[0].text() : pasted.value).trim()
          if (!text) throw new Error('Choose a checkpoint file or paste one.')
          const result = await api<CheckpointResult>('POST', '/admin/audit/verify-checkpoint', {
            json: { checkpoint: text },
          })
          clear(checkOut, checkpointResult(result), decodeJws(text) ? checkpointView(text) : null)
        },
      ),
      checkOut,
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'history-title' },
      h('h2', { id: 'history-title' }, 'A user’s history'),
      form(
        { id: 'history-form', class: 'filters' },
        [
          field('User ID', historyId, 'Deleted accounts too.'),
          h('button', { type: 'submit' }, 'Show history'),
        ],
        async () => context.navigate(`/audit/users/${Number(historyId.value)}`),
      ),
    ),
  ]
}

export const auditPages: Page[] = [
  {
    pattern: /^\/audit$/,
    title: 'Audit',
    roles: ['admin', 'auditor'],
    nav: { path: '/audit', label: 'Audit' },
    render: auditPage,
  },
  {
    pattern: /^\/audit\/users\/([1-9][0-9]{0,15})$/,
    title: 'History',
    roles: ['admin', 'auditor'],
    render: historyPage,
  },
]
