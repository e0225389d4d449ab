/** The shape every domain event shares: a stable type name and flat data. */
export type Event<Type extends string, Data extends Record<string, unknown>> = { type: Type; data: Data }

export type Role = 'user' | 'vendor' | 'admin' | 'auditor'
export const ROLES: readonly Role[] = ['user', 'vendor', 'admin', 'auditor']
