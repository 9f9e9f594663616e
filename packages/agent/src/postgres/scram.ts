/**
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as Postgres uses it (no channel
 * binding, gs2 header `n,,`). I/O-free: the session feeds it the server's messages and sends
 * what it returns. The iteration count is checked against a cap before the (deliberately slow)
 * PBKDF2 runs, so a hostile server cannot pin the agent's CPU.
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { WardError } from '@ward/protocol';
import { saslprep } from './saslprep.js';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
export const SCRAM_SHA_256_PLUS = 'SCRAM-SHA-256-PLUS';

const GS2_HEADER = 'n,,';

const malformed = (what: string) =>
  new WardError('ERR_PG_BACKEND_PROTOCOL', 'unavailable', `malformed SCRAM message from the database: ${what}`);

export interface ScramServerFirst {
  nonce: string;
  salt: Buffer;
  iterations: number;
}

/** Parses `a=value` attributes in order; `m=` (mandatory extension) is refused (RFC 5802 §5.1). */
function attributes(message: string, expected: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const parts = message.split(',');
  for (const [i, name] of expected.entries()) {
    const part = parts[i];
    if (part === undefined || part[1] !== '=' || part[0] !== name) {
      if (part?.startsWith('m=')) throw malformed('the server requires an unsupported extension');
      throw malformed(`expected attribute '${name}'`);
    }
    out.set(name, part.slice(2));
  }
  return out;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// RFC 5802 §7: printable ASCII except ','.
const NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;

function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function pbkdf2Async(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    pbkdf2(password, salt, iterations, 32, 'sha256', (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/**
 * One SCRAM-SHA-256 exchange.
 *
 * @example
 * const scram = new ScramClient();
 * send(SASLInitialResponse('SCRAM-SHA-256', scram.clientFirst()));
 * send(SASLResponse(await scram.clientFinal(serverFirst, password, 100_000)));
 * scram.verifyServerFinal(serverFinal); // throws if the server did not prove it knows the key
 */
export class ScramClient {
  readonly #clientNonce: string;
  readonly #clientFirstBare: string;
  #expectedServerSignature: Buffer | undefined;

  /** `user` is empty for Postgres, which takes the name from the StartupMessage. */
  constructor(options: { nonce?: string; user?: string } = {}) {
    this.#clientNonce = options.nonce ?? randomBytes(18).toString('base64');
    const user = (options.user ?? '').replaceAll('=', '=3D').replaceAll(',', '=2C');
    this.#clientFirstBare = `n=${user},r=${this.#clientNonce}`;
  }

  clientFirst(): string {
    return GS2_HEADER + this.#clientFirstBare;
  }

  /** Checks server-first-message; throws ERR_PG_SCRAM_ITERATIONS above `maxIterations`. */
  parseServerFirst(message: string, maxIterations: number): ScramServerFirst {
    const a = attributes(message, ['r', 's', 'i']);
    const nonce = a.get('r') as string;
    const salt = a.get('s') as string;
    const iterationText = a.get('i') as string;
    if (!nonce.startsWith(this.#clientNonce) || nonce.length <= this.#clientNonce.length || !NONCE.test(nonce)) {
      throw malformed('the server nonce does not extend the client nonce');
    }
    if (salt === '' || !BASE64.test(salt)) throw malformed('the salt is not base64');
    if (!/^[1-9][0-9]{0,9}$/.test(iterationText)) throw malformed('the iteration count is not a positive integer');
    const iterations = Number(iterationText);
    if (iterations > maxIterations) {
      throw new WardError(
        'ERR_PG_SCRAM_ITERATIONS',
        'unavailable',
        `the database asks for ${iterations} SCRAM iterations, more than the configured maximum of ${maxIterations}`,
      );
    }
    return { nonce, salt: Buffer.from(salt, 'base64'), iterations };
  }

  /** Builds client-final-message (with the proof) and remembers the server signature to expect. */
  async clientFinal(serverFirstMessage: string, password: string, maxIterations: number): Promise<string> {
    const first = this.parseServerFirst(serverFirstMessage, maxIterations);
    const salted = await pbkdf2Async(saslprep(password), first.salt, first.iterations);
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${first.nonce}`;
    const authMessage = `${this.#clientFirstBare},${serverFirstMessage},${withoutProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.byteLength);
    for (let i = 0; i < proof.byteLength; i++) proof[i] = (clientKey[i] as number) ^ (clientSignature[i] as number);
    this.#expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Verifies server-final-message; a wrong or missing signature means the server is not who it claims. */
  verifyServerFinal(message: string): void {
    const expected = this.#expectedServerSignature;
    if (!expected) throw malformed('server-final-message before client-final-message');
    if (message.startsWith('e=')) {
      throw new WardError(
        'ERR_PG_BACKEND_AUTH',
        'unavailable',
        `the database refused SCRAM authentication: ${message.slice(2).split(',')[0]}`,
      );
    }
    const v = attributes(message, ['v']).get('v') as string;
    if (!BASE64.test(v)) throw malformed('the server signature is not base64');
    const got = Buffer.from(v, 'base64');
    if (got.byteLength !== expected.byteLength || !timingSafeEqual(got, expected)) {
      throw new WardError(
        'ERR_PG_BACKEND_AUTH',
        'unavailable',
        'the database failed to prove it knows the SCRAM key (server signature mismatch); it may be an impostor',
      );
    }
  }
}
