/** Runs in every test file (vitest `setupFiles`): its temporary directories go when it ends. */
import { afterAll } from 'vitest'
import { removeTempDirs } from './temp.ts'

afterAll(removeTempDirs)
