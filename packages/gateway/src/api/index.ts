export { type ApiContext, createApi } from './api-routes.js';
