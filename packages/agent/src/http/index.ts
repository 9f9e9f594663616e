export { type HttpUpstream, serveHttpSession } from './http-upstream.js';
