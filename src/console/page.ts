/** What a console page is: a path pattern, the roles that see it, and a render function. */
import type { Role, User } from './api.ts'
import type { Child } from './dom.ts'

export type PageContext = {
  /** The logged-in account. */
  me: User
  /** The pattern's captured groups. */
  params: string[]
  /** The query part of the hash (`#/users?q=bob`). */
  query: URLSearchParams
  navigate: (path: string) => void
  /** Says something to screen readers and sighted users alike (the status line). */
  announce: (text: string) => void
  reloadMe: () => Promise<User>
  logOut: (message?: string) => Promise<void>
}

export type Page = {
  pattern: RegExp
  title: string
  roles?: Role[]
  nav?: { path: string; label: string }
  render: (context: PageContext) => Promise<Child>
}
