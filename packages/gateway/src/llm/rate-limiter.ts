/** Per-connection rate limits, each counted per identity. Absent: no limit. */
export interface ConnectionLimits {
  requestsPerMinute?: number | undefined;
  /** Charged after each answer, from the usage the upstream reports. */
  tokensPerMinute?: number | undefined;
  /** Inputs of embedding requests (a request with 100 strings costs 100). */
  embeddingInputsPerMinute?: number | undefined;
}

export type LimitName = 'requestsPerMinute' | 'tokensPerMinute' | 'embeddingInputsPerMinute';

export type Admission =
  | {
      ok: true /** Charges the tokens the answer used (may push the balance below zero). */;
      charge(tokens: number): void;
    }
  | { ok: false; limit: LimitName; retryAfterSeconds: number; limitValue: number };

/**
 * A token bucket: `capacity` units, refilled continuously at `capacity` per minute. A full
 * minute's allowance can be spent at once (a burst), and after that the rate holds. The level
 * may go negative when usage is charged after the fact (tokens); the caller then waits until
 * it is positive again.
 */
class Bucket {
  level: number;
  updated: number;

  constructor(
    readonly capacity: number,
    now: number,
  ) {
    this.level = capacity;
    this.updated = now;
  }

  refill(now: number): void {
    const elapsed = now - this.updated;
    if (elapsed > 0) {
      this.level = Math.min(this.capacity, this.level + (elapsed * this.capacity) / 60_000);
      this.updated = now;
    }
  }

  /** Milliseconds until the level reaches `need`. */
  waitMs(need: number): number {
    return Math.max(0, ((need - this.level) * 60_000) / this.capacity);
  }

  full(now: number): boolean {
    this.refill(now);
    return this.level >= this.capacity;
  }
}

export interface RateLimiterOptions {
  now?: () => number;
  /** Buckets kept before idle (full) ones are swept. Default 100 000. */
  maxBuckets?: number;
}

/**
 * In-memory token buckets per (connection, identity, limit). One gateway process counts on its
 * own: replicas each allow the configured rate.
 *
 * @example
 * const limiter = new RateLimiter();
 * const a = limiter.admit('llm', 'user:bob', { requestsPerMinute: 60 }, { embeddingInputs: 0 });
 * if (!a.ok) reply429(a.retryAfterSeconds); else a.charge(usage.totalTokens);
 */
export class RateLimiter {
  readonly #now: () => number;
  readonly #max: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(options: RateLimiterOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#max = options.maxBuckets ?? 100_000;
  }

  get size(): number {
    return this.#buckets.size;
  }

  /**
   * Admits one request, or says which limit refuses it and for how long. Nothing is taken from
   * any bucket unless every limit admits the request.
   */
  admit(connection: string, identity: string, limits: ConnectionLimits, cost: { embeddingInputs: number }): Admission {
    const now = this.#now();
    const checks: Array<{ limit: LimitName; bucket: Bucket; take: number; need: number }> = [];
    const check = (limit: LimitName, take: number, need: number) => {
      const capacity = limits[limit];
      if (capacity === undefined || capacity <= 0) return;
      const bucket = this.#bucket(`${connection}\0${identity}\0${limit}`, capacity, now);
      checks.push({ limit, bucket, take, need });
    };
    check('requestsPerMinute', 1, 1);
    // Tokens are charged after the answer, so a request needs only a positive balance.
    check('tokensPerMinute', 0, Number.MIN_VALUE);
    // An embedding batch larger than a minute's allowance waits for a full bucket and is let
    // through then (refusing it forever would leave the caller no way to succeed).
    if (cost.embeddingInputs > 0) check('embeddingInputsPerMinute', cost.embeddingInputs, cost.embeddingInputs);
    for (const c of checks) {
      const need = Math.min(c.need, c.bucket.capacity);
      if (c.bucket.level < need) {
        return {
          ok: false,
          limit: c.limit,
          retryAfterSeconds: Math.max(1, Math.ceil(c.bucket.waitMs(need) / 1000)),
          limitValue: c.bucket.capacity,
        };
      }
    }
    for (const c of checks) c.bucket.level -= c.take;
    const tokens = checks.find((c) => c.limit === 'tokensPerMinute')?.bucket;
    return {
      ok: true,
      charge: (n: number) => {
        if (!tokens || !(n > 0)) return;
        tokens.refill(this.#now());
        tokens.level -= n;
      },
    };
  }

  #bucket(key: string, capacity: number, now: number): Bucket {
    let bucket = this.#buckets.get(key);
    if (bucket && bucket.capacity !== capacity) bucket = undefined; // the limit was reconfigured
    if (!bucket) {
      if (this.#buckets.size >= this.#max) this.#sweep(now);
      bucket = new Bucket(capacity, now);
      this.#buckets.set(key, bucket);
    } else bucket.refill(now);
    return bucket;
  }

  /** A full bucket is the same as no bucket: drop those (idle identities). */
  #sweep(now: number): void {
    for (const [key, bucket] of this.#buckets) if (bucket.full(now)) this.#buckets.delete(key);
  }
}
