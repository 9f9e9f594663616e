export { type ApiContext, createApi } from './api-routes.js';
export { identityProvidersRoute } from './identity-providers.js';
