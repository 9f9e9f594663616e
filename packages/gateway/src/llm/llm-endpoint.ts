/** Which LLM API an HTTP connection speaks (`none`: any other HTTP API, proxied as bytes). */
export type LlmApi = 'openai' | 'anthropic' | 'none';

/** The request shapes ward understands; `other` is proxied and recorded without inspection. */
export type LlmEndpoint = 'chat.completions' | 'responses' | 'embeddings' | 'models' | 'messages' | 'other';

/**
 * Names the endpoint of a request from the path below the connection (`/v1/chat/completions`,
 * with or without the `/v1` prefix, query string ignored).
 *
 * @example
 * classifyLlmRequest('openai', 'POST', '/v1/chat/completions?x=1'); // 'chat.completions'
 */
export function classifyLlmRequest(api: LlmApi, method: string, path: string): LlmEndpoint {
  if (api === 'none') return 'other';
  const q = path.indexOf('?');
  let p = q < 0 ? path : path.slice(0, q);
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  if (p.startsWith('/v1/')) p = p.slice(3);
  if (api === 'anthropic') {
    if (method === 'POST' && p === '/messages') return 'messages';
    if (method === 'GET' && (p === '/models' || p.startsWith('/models/'))) return 'models';
    return 'other';
  }
  if (method === 'POST' && p === '/chat/completions') return 'chat.completions';
  if (method === 'POST' && p === '/responses') return 'responses';
  if (method === 'POST' && p === '/embeddings') return 'embeddings';
  if (method === 'GET' && (p === '/models' || p.startsWith('/models/'))) return 'models';
  return 'other';
}

/** What ward reads from a request body before anything goes upstream. */
export interface LlmRequestFacts {
  model: string | undefined;
  stream: boolean;
  /** Embeddings: how many inputs the request asks for (the `embeddingInputsPerMinute` cost). */
  embeddingInputs: number;
}

const NO_FACTS: LlmRequestFacts = Object.freeze({ model: undefined, stream: false, embeddingInputs: 0 });

/**
 * Reads model, stream flag and embedding input count from a JSON request body. A body that is
 * not JSON, or not the expected shape, yields empty facts: ward still proxies it and the
 * upstream answers with its own error.
 */
export function inspectLlmRequest(endpoint: LlmEndpoint, body: Buffer): LlmRequestFacts {
  if (endpoint === 'other' || endpoint === 'models' || body.length === 0) return NO_FACTS;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return NO_FACTS;
  }
  if (!isRecord(parsed)) return NO_FACTS;
  const model = typeof parsed['model'] === 'string' ? parsed['model'] : undefined;
  const stream = parsed['stream'] === true;
  let embeddingInputs = 0;
  if (endpoint === 'embeddings') {
    const input = parsed['input'];
    // A flat array of numbers is one tokenised input; an array of strings or of arrays is many.
    if (typeof input === 'string') embeddingInputs = 1;
    else if (Array.isArray(input)) embeddingInputs = input.every((x) => typeof x === 'number') ? 1 : input.length;
  }
  return { model, stream, embeddingInputs };
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
