import type { Identity } from '../identity/index.js';
import type { StagedBlob } from '../store/blobs.js';
import type { Store } from '../store/index.js';
import type { Recorder, RecordFields, SessionInfo, SessionOutcome } from './recorder.js';

/** How an identity is written in the audit log: `user:alice`, `service:etl-bot`. */
export function identityLabel(identity: Identity | undefined): string | undefined {
  return identity ? `${identity.kind}:${identity.subject}` : undefined;
}

/** The Recorder over the embedded store: sessions table plus the hash-chained audit log. */
export class StoreRecorder implements Recorder {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  get healthy(): boolean {
    return this.#store.audit.healthy;
  }

  async sessionStarted(session: SessionInfo): Promise<void> {
    await this.#store.sessions.start({
      id: session.id,
      connection: session.connection,
      protocol: session.protocol,
      identity: identityLabel(session.identity) ?? '',
      source: session.source,
      principal: {
        issuer: session.identity.issuer,
        groups: session.identity.groups,
        roles: session.identity.roles,
      },
    });
  }

  // Not async: an async frame would keep `fields` (and the staged blobs' bytes) alive until
  // the record is durable; the audit log drops them once the batch has committed.
  record(sessionId: string | undefined, kind: string, fields: RecordFields): Promise<void> {
    const blobs = fields.blobs;
    const input = {
      kind,
      sessionId,
      identity: identityLabel(fields.identity),
      source: fields.source,
      connection: fields.connection,
      rule: fields.rule,
      decision: fields.decision,
      data: fields.data,
    };
    return this.#store.audit
      .appendWith(input, blobs && blobs.length > 0 ? this.#store.blobs.hook(blobs) : undefined)
      .then(done);
  }

  async sessionEnded(sessionId: string, outcome: SessionOutcome): Promise<void> {
    await this.#store.sessions.end(sessionId, {
      status: outcome.status,
      errorCode: outcome.error?.code,
      errorMessage: outcome.error?.message,
      summary: outcome.summary,
    });
  }

  stageBlob(bytes: Uint8Array): StagedBlob {
    return this.#store.blobs.stage(bytes);
  }
}

function done(): void {}
