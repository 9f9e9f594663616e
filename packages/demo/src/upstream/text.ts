import { createHash } from 'node:crypto';

/** The PII the upstream puts in replies about customers; masking tests look for these. */
export const DEMO_REPLY_PII = Object.freeze({
  name: 'Jane Doe',
  email: 'jane.doe@example.com',
  phone: '+1-202-555-0143',
});

/**
 * Token count: ceil(characters / 4), the usual rule of thumb, applied the same way to prompts,
 * completions and embedding inputs so tests can compute the expected `usage`.
 */
export function countTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Word-ish pieces that concatenate back to `text`: each is optional leading spaces plus one word. */
export function splitTokens(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

/** Keeps whole pieces while the running token count stays within `maxTokens`. */
export function truncateToTokens(text: string, maxTokens: number | undefined): { text: string; truncated: boolean } {
  if (maxTokens === undefined || countTokens(text) <= maxTokens) return { text, truncated: false };
  let out = '';
  for (const piece of splitTokens(text)) {
    if (countTokens(out + piece) > maxTokens) break;
    out += piece;
  }
  return { text: out, truncated: true };
}

/**
 * The reply to a prompt, a pure function of it: it quotes the first words of the last user
 * message, and mentions a customer's email and phone when the prompt is about customers or email.
 */
export function composeReply(lastUserText: string): string {
  const words = lastUserText.trim().split(/\s+/).filter(Boolean);
  const quoted = words.slice(0, 6).join(' ') + (words.length > 6 ? '…' : '');
  let reply =
    words.length === 0 ? 'You sent an empty message.' : `You said: "${quoted}". This is the ward demo model answering.`;
  if (/customer|e-?mail/i.test(lastUserText)) {
    reply += ` The customer on file is ${DEMO_REPLY_PII.name}, reachable at ${DEMO_REPLY_PII.email} or ${DEMO_REPLY_PII.phone}.`;
  }
  return reply;
}

/** `call <name>` in the prompt, if any. */
export function requestedToolName(text: string): string | undefined {
  return /\bcall\s+([A-Za-z0-9_.-]+)/i.exec(text)?.[1];
}

/** A short deterministic id suffix derived from `seed`. */
export function stableId(seed: string, length = 24): string {
  return createHash('sha256').update(seed).digest('base64url').replace(/[-_]/g, 'x').slice(0, length);
}

/**
 * A deterministic unit vector for `text`: SHA-256 in counter mode gives the components,
 * then L2 normalisation. Same text and model give the same vector; different texts are
 * (pseudo-)random with respect to each other.
 */
export function embed(text: string, dimensions: number, model: string): Float32Array {
  const raw = new Float64Array(dimensions);
  let filled = 0;
  for (let block = 0; filled < dimensions; block++) {
    const digest = createHash('sha256').update(`${model}\0${block}\0${text}`).digest();
    for (let i = 0; i + 2 <= digest.length && filled < dimensions; i += 2) {
      raw[filled++] = digest.readUInt16BE(i) / 32767.5 - 1;
    }
  }
  let norm = 0;
  for (const v of raw) norm += v * v;
  norm = Math.sqrt(norm) || 1;
  const out = new Float32Array(dimensions);
  for (let i = 0; i < dimensions; i++) out[i] = (raw[i] as number) / norm;
  return out;
}

/**
 * Arguments for a requested tool, filled from its JSON schema: string fields get the words
 * after `call <name>` (or "demo"), numbers 1, booleans true. Required fields first; with no
 * `required` list every property is filled.
 */
export function toolArguments(schema: unknown, promptText: string, toolName: string): Record<string, unknown> {
  const after = promptText.slice(promptText.toLowerCase().indexOf(toolName.toLowerCase()) + toolName.length);
  const value =
    after
      .replace(/^\s*(with|for|on|about)?\s*/i, '')
      .trim()
      .replace(/[.?!]+$/, '') || 'demo';
  const s = (schema ?? {}) as { properties?: Record<string, { type?: unknown }>; required?: unknown };
  const properties = s.properties ?? {};
  const names = Array.isArray(s.required)
    ? s.required.filter((n): n is string => typeof n === 'string')
    : Object.keys(properties);
  const args: Record<string, unknown> = {};
  for (const name of names) {
    const type = properties[name]?.type;
    args[name] = type === 'number' || type === 'integer' ? 1 : type === 'boolean' ? true : value;
  }
  return args;
}
