/** The shape every domain event shares: a stable type name and flat data. */
export type Event<Type extends string, Data extends Record<string, unknown>> = { type: Type; data: Data }

export type Role = 'user' | 'vendor' | 'admin' | 'auditor'
export const ROLES: readonly Role[] = ['user', 'vendor', 'admin', 'auditor']

type EventData<E extends Event<string, Record<string, unknown>>, T> = Extract<E, { type: T }>['data']
type TextKeys<D> = { [K in keyof D]-?: NonNullable<D[K]> extends string ? K : never }[keyof D]
type TextListKeys<D> = { [K in keyof D]-?: NonNullable<D[K]> extends readonly string[] ? K : never }[keyof D]

/**
 * What each text field of each event type holds, every one declared: `personal` fields are stored
 * encrypted under the account's data key (so erasure destroys them), `safe` ones as they are. Only
 * a single string can be encrypted, so lists of strings can only be `safe`.
 */
export type TextFieldDeclarations<E extends Event<string, Record<string, unknown>>> = {
  [T in E['type']]: { [K in TextKeys<EventData<E, T>>]: 'personal' | 'safe' } & {
    [K in TextListKeys<EventData<E, T>>]: 'safe'
  }
}
