import { activityProjection } from './activity.projection.ts'
import { passkeysProjection } from './passkeys.projection.ts'
import type { Projection } from './projection.ts'
import { sessionsProjection } from './sessions.projection.ts'
import { usersProjection } from './users.projection.ts'

export const projections: readonly Projection[] = [
  usersProjection,
  sessionsProjection,
  activityProjection,
  passkeysProjection,
]
