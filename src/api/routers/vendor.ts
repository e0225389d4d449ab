import { toVendorResponse } from '../presenters.ts'
import { LoginResult, VendorCreate, VendorLogin, VendorResponse } from '../schemas.ts'
import { limitedProcedure, router } from '../trpc.ts'

export const vendorRouter = router({
  registerVendor: limitedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/vendor/register_vendor',
        tags: ['vendor'],
        summary: 'Create a vendor account',
        errorResponses: { 409: 'Username or email taken', 429: 'Rate limited' },
      },
    })
    .input(VendorCreate)
    .output(VendorResponse)
    .mutation(async ({ input, ctx }) =>
      toVendorResponse(await ctx.runtime.accounts.register({ ...input, role: 'vendor' }, { actorId: null })),
    ),

  login: limitedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/vendor/login',
        tags: ['vendor'],
        summary: 'Log in as a vendor',
        errorResponses: { 401: 'Not a vendor, or bad credentials', 423: 'Locked', 429: 'Rate limited' },
      },
    })
    .input(VendorLogin)
    .output(LoginResult)
    .mutation(({ input, ctx }) => ctx.runtime.authentication.login(input, ctx.request.client, ['vendor'])),
})
