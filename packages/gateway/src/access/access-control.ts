import { WardError } from '@ward/protocol';
import type { Logger } from 'pino';
import { assertNoSecrets } from '../audit/index.js';
import type { AccessAction, AccessGrantConfig } from '../config/access-config.js';
import type { Identity } from '../identity/index.js';
import { identityLabel, type Recorder } from '../recording/index.js';
import type { LiveSession, SessionRegistry } from '../sessions/index.js';
import type { AccessGrantRepository, AccessRequestRecord, JitGrantRecord } from '../store/access-grants.js';
import type { ServiceAccount, ServiceAccountRepository } from '../store/service-accounts.js';
import { matchStaticGrant } from './grants.js';

/** Where a session opens from: recorded with every decision. */
export type AccessProtocol = 'postgres' | 'ssh' | 'http' | 'connect';

export interface AuthorizeRequest {
  identity: Identity;
  connection: string;
  action: AccessAction;
  /** Client address, `ip:port`. */
  source: string;
  protocol: AccessProtocol;
  /** The session the decision opens, when it has an id already. */
  sessionId?: string | undefined;
  /**
   * false: the caller puts the rule on its own record instead of an `access.allow` record (an
   * HTTP exchange carries it on `http.exchange`, one record per request instead of two).
   * Refusals are always recorded.
   */
  recordAllow?: boolean | undefined;
}

export interface AccessDecision {
  /** `role:admin`, `grant:<config id>`, `jit:<grant id>`. */
  rule: string;
  /** Epoch ms when the rule stops allowing it (grant expiry, window close); Infinity if never. */
  validUntil: number;
}

/** The decision alone, unrecorded. */
export type Verdict =
  | { allow: true; rule: string; validUntil: number }
  | { allow: false; rule: string; error: WardError };

/** What the session-open paths call: allowed (decision) or refused (a recorded WardError, thrown). */
export interface Authorizer {
  authorize(request: AuthorizeRequest): Promise<AccessDecision>;
  /** The decision without recording it (e.g. SSH checks at login that some action is granted). */
  decide(identity: Identity, connection: string, action: AccessAction): Verdict;
  /** Throws ERR_SERVICE_ACCOUNT_DISABLED for a disabled service account's identity. */
  assertEnabled(identity: Identity): void;
}

export interface AccessControlOptions {
  grants: readonly AccessGrantConfig[];
  /** Longest just-in-time grant, in ms. */
  maxJitDurationMs: number;
  jit: AccessGrantRepository;
  accounts: ServiceAccountRepository;
  sessions: SessionRegistry;
  recorder: Recorder;
  connectionType(name: string): string | undefined;
  logger: Logger;
  now?: () => number;
}

/** Longest a timer may be set for (setTimeout's limit is 2^31-1 ms); a later expiry re-arms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const isApprover = (who: Identity) => who.roles.includes('approver') || who.roles.includes('admin');
const canSeeAll = (who: Identity) => isApprover(who) || who.roles.includes('auditor');

function label(identity: Identity): string {
  return identityLabel(identity) ?? '';
}

/**
 * Who may open which connection, and for how long. One `authorize()` for every protocol at
 * session open, the just-in-time requests and grants, service-account state, and the end of
 * sessions whose grant expired, was revoked or whose window closed.
 *
 * Rules, in order: a disabled service account is refused; `admin` opens every connection (the
 * bootstrap identity); `auditor` never opens sessions (it reads evidence); everyone else
 * (`user`, `approver`, services) needs a grant from the config or an approved, live
 * just-in-time grant for the connection and the action.
 *
 * Expiry runs on one timer set at the next moment a live session or a JIT grant can lose its
 * rule (not polling); when it fires, each open session is checked again and those no longer
 * allowed end with ERR_ACCESS_GRANT_EXPIRED in their own protocol.
 *
 * @example
 * const access = new AccessControl({ grants: config.access.grants, maxJitDurationMs: 8 * 3600_000, jit, accounts, sessions, recorder, connectionType, logger });
 * const { rule } = await access.authorize({ identity, connection: 'prod-pg', action: 'connect', source, protocol: 'postgres' });
 */
export class AccessControl implements Authorizer {
  readonly #o: AccessControlOptions;
  readonly #now: () => number;
  /** Live JIT grants, loaded at start and kept in step with approvals and revocations. */
  #jit: JitGrantRecord[];
  /** Disabled service accounts by name (a token of one is refused before its expiry). */
  readonly #disabled = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #stopped = false;

  constructor(options: AccessControlOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#jit = options.jit.liveGrants(new Date(this.#now()));
    for (const g of this.#jit) this.#arm(Date.parse(g.expiresAt));
    for (const a of options.accounts.list()) if (a.disabled) this.#disabled.add(a.name);
  }

  get maxJitDurationMs(): number {
    return this.#o.maxJitDurationMs;
  }

  /** Throws for the token of a disabled service account (called at authentication). */
  assertEnabled(identity: Identity): void {
    if (identity.kind === 'service' && this.#disabled.has(identity.subject)) {
      throw new WardError(
        'ERR_SERVICE_ACCOUNT_DISABLED',
        'unauthenticated',
        `service account "${identity.subject}" is disabled`,
      );
    }
  }

  /** The decision alone: no record, no side effect. */
  decide(identity: Identity, connection: string, action: AccessAction, now = this.#now()): Verdict {
    if (identity.kind === 'service' && this.#disabled.has(identity.subject)) {
      return {
        allow: false,
        rule: 'service-account:disabled',
        error: new WardError(
          'ERR_SERVICE_ACCOUNT_DISABLED',
          'permission_denied',
          `service account "${identity.subject}" is disabled`,
        ),
      };
    }
    if (identity.roles.includes('admin')) return { allow: true, rule: 'role:admin', validUntil: Infinity };
    if (identity.roles.includes('auditor')) {
      return {
        allow: false,
        rule: 'role:auditor',
        error: new WardError(
          'ERR_ACCESS_DENIED',
          'permission_denied',
          `${identity.subject} is an auditor: auditors read evidence and never open sessions`,
        ),
      };
    }
    const who = label(identity);
    let best: { rule: string; validUntil: number } | undefined;
    const match = matchStaticGrant(this.#o.grants, { label: who, groups: identity.groups }, connection, action, now);
    if (match) best = { rule: `grant:${match.grant.id}`, validUntil: match.validUntil };
    for (const g of this.#jit) {
      if (g.identity !== who || g.connection !== connection || g.action !== action) continue;
      const starts = Date.parse(g.startsAt);
      const expires = Date.parse(g.expiresAt);
      if (starts > now || expires <= now) continue;
      if (!best || expires > best.validUntil) best = { rule: `jit:${g.id}`, validUntil: expires };
    }
    if (best) return { allow: true, ...best };
    return {
      allow: false,
      rule: 'no-grant',
      error: new WardError(
        'ERR_ACCESS_NO_GRANT',
        'permission_denied',
        `${who} has no grant to ${action} on "${connection}": ask for one with \`ward access request ${connection} --for 1h --reason "…"\``,
      ),
    };
  }

  /**
   * Decides and records (`access.allow` / `access.deny`, with identity, source, connection and
   * the rule). Refusals throw the WardError the client should see.
   */
  async authorize(request: AuthorizeRequest): Promise<AccessDecision> {
    const verdict = this.decide(request.identity, request.connection, request.action);
    const fields = {
      identity: request.identity,
      source: request.source,
      connection: request.connection,
      rule: verdict.rule,
    };
    if (!verdict.allow) {
      await this.#o.recorder.record(request.sessionId, 'access.deny', {
        ...fields,
        decision: 'deny',
        data: { action: request.action, protocol: request.protocol, code: verdict.error.code },
      });
      throw verdict.error;
    }
    if (request.recordAllow !== false) {
      await this.#o.recorder.record(request.sessionId, 'access.allow', {
        ...fields,
        decision: 'allow',
        data: {
          action: request.action,
          protocol: request.protocol,
          validUntil: Number.isFinite(verdict.validUntil) ? new Date(verdict.validUntil).toISOString() : null,
        },
      });
    }
    this.#arm(verdict.validUntil);
    return { rule: verdict.rule, validUntil: verdict.validUntil };
  }

  /** Called as each session registers: one that lost its rule while it opened ends now. */
  sessionAdded(session: LiveSession): void {
    const verdict = this.decide(session.identity, session.connection, session.accessAction ?? 'connect');
    if (verdict.allow) {
      this.#arm(verdict.validUntil);
      return;
    }
    // Not from inside SessionRegistry.add: the session is still setting itself up.
    queueMicrotask(() => this.#end(session, expired(session, verdict.error), 'access.expired', verdict.rule));
  }

  // ------------------------------------------------------------------ just-in-time access

  async request(
    who: Identity,
    r: { connection: string; action: AccessAction; durationMs: number; reason: string },
    source: string,
  ): Promise<AccessRequestRecord> {
    if (who.roles.includes('auditor') && !who.roles.includes('admin')) {
      throw new WardError(
        'ERR_ACCESS_DENIED',
        'permission_denied',
        'auditors never open sessions, so they request no access',
      );
    }
    if (!this.#o.connectionType(r.connection)) {
      throw new WardError('ERR_CONN_UNKNOWN', 'not_found', `no connection named "${r.connection}"`);
    }
    const reason = r.reason.trim();
    if (reason.length === 0) {
      throw new WardError('ERR_ACCESS_REASON_REQUIRED', 'invalid_argument', 'a request needs a reason (--reason "…")');
    }
    if (reason.length > 1000) {
      throw new WardError('ERR_ACCESS_REASON_REQUIRED', 'invalid_argument', 'the reason is limited to 1000 characters');
    }
    if (!Number.isFinite(r.durationMs) || r.durationMs < 1000 || r.durationMs > this.#o.maxJitDurationMs) {
      throw new WardError(
        'ERR_ACCESS_BAD_DURATION',
        'invalid_argument',
        `a grant lasts from 1s up to ${formatMs(this.#o.maxJitDurationMs)} (access.jit.maxDuration)`,
      );
    }
    checkText(this.#o.recorder, reason);
    const created = this.#o.jit.createRequest({
      requester: label(who),
      connection: r.connection,
      action: r.action,
      durationMs: r.durationMs,
      reason,
    });
    await this.#o.recorder.record(undefined, 'access.request', {
      identity: who,
      source,
      connection: r.connection,
      rule: 'jit',
      data: { request: created.id, action: r.action, durationMs: created.durationMs, reason },
    });
    return created;
  }

  listRequests(who: Identity, q: { status?: AccessRequestRecord['status'] | undefined; limit: number }) {
    return this.#o.jit.listRequests({ ...q, requester: canSeeAll(who) ? undefined : label(who) });
  }

  getRequest(who: Identity, id: string): AccessRequestRecord {
    const r = this.#o.jit.getRequest(id);
    if (!r || (!canSeeAll(who) && r.requester !== label(who))) {
      throw new WardError('ERR_ACCESS_REQUEST_NOT_FOUND', 'not_found', `no access request ${id}`);
    }
    return r;
  }

  async approve(
    who: Identity,
    id: string,
    comment: string | undefined,
    source: string,
  ): Promise<{ request: AccessRequestRecord; grant: JitGrantRecord }> {
    checkText(this.#o.recorder, comment);
    const pending = await this.#checkDecider(who, id, source, 'approve');
    const { request, grant } = this.#o.jit.approve(id, label(who), comment, new Date(this.#now()));
    this.#jit.push(grant);
    this.#arm(Date.parse(grant.expiresAt));
    await this.#o.recorder.record(undefined, 'access.approve', {
      identity: who,
      source,
      connection: pending.connection,
      decision: 'allow',
      rule: 'jit',
      data: {
        request: id,
        grant: grant.id,
        requester: request.requester,
        action: grant.action,
        expiresAt: grant.expiresAt,
        ...(comment ? { comment } : {}),
      },
    });
    return { request, grant };
  }

  async reject(who: Identity, id: string, reason: string, source: string): Promise<AccessRequestRecord> {
    if (reason.trim().length === 0) {
      throw new WardError(
        'ERR_ACCESS_REASON_REQUIRED',
        'invalid_argument',
        'a rejection needs a reason (--reason "…")',
      );
    }
    checkText(this.#o.recorder, reason);
    const pending = await this.#checkDecider(who, id, source, 'reject');
    const request = this.#o.jit.reject(id, label(who), reason.trim(), new Date(this.#now()));
    await this.#o.recorder.record(undefined, 'access.reject', {
      identity: who,
      source,
      connection: pending.connection,
      decision: 'deny',
      rule: 'jit',
      data: { request: id, requester: request.requester, reason: reason.trim() },
    });
    return request;
  }

  /** Requester ≠ approver, approver or admin role; a refusal is recorded too. */
  async #checkDecider(who: Identity, id: string, source: string, what: string): Promise<AccessRequestRecord> {
    const r = this.#o.jit.getRequest(id);
    if (!r) throw new WardError('ERR_ACCESS_REQUEST_NOT_FOUND', 'not_found', `no access request ${id}`);
    let error: WardError | undefined;
    let rule = 'jit.approver-role';
    if (r.requester === label(who)) {
      rule = 'jit.requester-not-approver';
      error = new WardError(
        'ERR_ACCESS_SELF_APPROVAL',
        'permission_denied',
        `you cannot ${what} your own request: another approver must`,
      );
    } else if (!isApprover(who)) {
      error = new WardError(
        'ERR_ACCESS_DENIED',
        'permission_denied',
        `to ${what} a request needs the approver or admin role`,
      );
    }
    if (error) {
      await this.#o.recorder.record(undefined, `access.${what}`, {
        identity: who,
        source,
        connection: r.connection,
        decision: 'deny',
        rule,
        data: { request: id, code: error.code },
      });
      throw error;
    }
    return r;
  }

  listGrants(who: Identity, q: { liveOnly: boolean; limit: number }): JitGrantRecord[] {
    return this.#o.jit.listGrants({
      identity: canSeeAll(who) ? undefined : label(who),
      liveAt: q.liveOnly ? new Date(this.#now()) : undefined,
      limit: q.limit,
    });
  }

  /** Revokes a JIT grant (approvers, admins, or the grantee) and ends the sessions it alone allowed. */
  async revoke(
    who: Identity,
    grantId: string,
    reason: string,
    source: string,
  ): Promise<{ grant: JitGrantRecord; sessionsEnded: number }> {
    const existing = this.#o.jit.getGrant(grantId);
    if (!existing || (!canSeeAll(who) && existing.identity !== label(who))) {
      throw new WardError('ERR_ACCESS_GRANT_NOT_FOUND', 'not_found', `no grant ${grantId}`);
    }
    if (!isApprover(who) && existing.identity !== label(who)) {
      throw new WardError(
        'ERR_ACCESS_DENIED',
        'permission_denied',
        'revoking a grant needs the approver or admin role',
      );
    }
    const text = reason.trim() || 'revoked';
    checkText(this.#o.recorder, text);
    const grant = this.#o.jit.revoke(grantId, label(who), text, new Date(this.#now()));
    this.#jit = this.#jit.filter((g) => g.id !== grantId);
    await this.#o.recorder.record(undefined, 'access.revoke', {
      identity: who,
      source,
      connection: grant.connection,
      decision: 'deny',
      rule: `jit:${grant.id}`,
      data: { grant: grant.id, grantee: grant.identity, reason: text },
    });
    const error = new WardError(
      'ERR_ACCESS_GRANT_REVOKED',
      'permission_denied',
      `your access to "${grant.connection}" was revoked by ${label(who)}: ${text}`,
    );
    const sessionsEnded = this.#recheck(
      (s) => label(s.identity) === grant.identity && s.connection === grant.connection,
      () => error,
      'access.revoked',
    );
    return { grant, sessionsEnded };
  }

  // ------------------------------------------------------------------ service accounts

  /** Disables or enables an account; disabling ends its open sessions at once. */
  async setServiceAccountDisabled(who: Identity, name: string, disabled: boolean, source: string) {
    const account: ServiceAccount = this.#o.accounts.setDisabled(name, disabled);
    if (disabled) this.#disabled.add(name);
    else this.#disabled.delete(name);
    await this.#o.recorder.record(undefined, disabled ? 'service_account.disable' : 'service_account.enable', {
      identity: who,
      source,
      rule: 'service-account',
      data: { account: name },
    });
    let sessionsEnded = 0;
    if (disabled) {
      const error = new WardError(
        'ERR_SERVICE_ACCOUNT_DISABLED',
        'permission_denied',
        `service account "${name}" was disabled`,
      );
      sessionsEnded = this.#recheck(
        (s) => s.identity.kind === 'service' && s.identity.subject === name,
        () => error,
        'access.revoked',
      );
    }
    return { account, sessionsEnded };
  }

  // ------------------------------------------------------------------ expiry

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Makes sure the timer fires no later than `at`. */
  #arm(at: number): void {
    if (this.#stopped || !Number.isFinite(at) || at >= this.#timerAt) return;
    if (this.#timer) clearTimeout(this.#timer);
    const now = this.#now();
    const delay = Math.min(Math.max(0, at - now), MAX_TIMER_MS);
    // Past setTimeout's limit the timer fires early, checks, and sets itself again.
    const fireAt = delay < MAX_TIMER_MS ? at : now + delay;
    this.#timerAt = fireAt;
    this.#timer = setTimeout(() => this.#fire(fireAt), delay);
    this.#timer.unref();
  }

  #fire(at: number): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    // A timer may fire a millisecond early; the moment it was set for is what counts.
    const now = Math.max(this.#now(), at);
    const lapsed = this.#jit.filter((g) => Date.parse(g.expiresAt) <= now);
    this.#jit = this.#jit.filter((g) => Date.parse(g.expiresAt) > now);
    for (const g of lapsed) {
      this.#o.recorder
        .record(undefined, 'access.grant_expired', {
          connection: g.connection,
          rule: `jit:${g.id}`,
          decision: 'deny',
          data: { grant: g.id, grantee: g.identity, expiresAt: g.expiresAt },
        })
        .catch((err) => this.#o.logger.error({ err }, 'could not record a grant expiry'));
    }
    for (const g of this.#jit) this.#arm(Date.parse(g.expiresAt));
    this.#recheck(() => true, expired, 'access.expired', now);
  }

  /** Checks the matching open sessions again; ends those no longer allowed. Returns how many. */
  #recheck(
    match: (s: LiveSession) => boolean,
    reason: (s: LiveSession, error: WardError) => WardError,
    kind: string,
    now = this.#now(),
  ): number {
    let ended = 0;
    for (const s of this.#o.sessions.list()) {
      if (!match(s)) continue;
      const verdict = this.decide(s.identity, s.connection, s.accessAction ?? 'connect', now);
      if (verdict.allow) {
        this.#arm(verdict.validUntil);
        continue;
      }
      this.#end(s, reason(s, verdict.error), kind, verdict.rule);
      ended++;
    }
    return ended;
  }

  #end(session: LiveSession, error: WardError, kind: string, rule: string): void {
    this.#o.recorder
      .record(session.id, kind, {
        identity: session.identity,
        source: session.source,
        connection: session.connection,
        decision: 'deny',
        rule,
        data: { code: error.code, protocol: session.protocol },
      })
      .catch((err) => this.#o.logger.error({ err }, 'could not record the end of access'));
    session.terminate(error);
  }
}

/**
 * Free text people type (reasons, comments) goes into the audit log, which refuses anything
 * shaped like a token; refused here first, before any row changes, so nothing happens unrecorded.
 */
function checkText(recorder: Recorder, ...texts: (string | undefined)[]): void {
  if (!recorder.healthy) {
    throw new WardError(
      'ERR_AUDIT_UNAVAILABLE',
      'unavailable',
      'the audit store cannot write; the gateway refuses new work until it can',
    );
  }
  try {
    assertNoSecrets(texts.filter((t) => t !== undefined));
  } catch (err) {
    throw new WardError(
      'ERR_API_BAD_BODY',
      'invalid_argument',
      'leave tokens and credentials out of reasons and comments',
      {
        cause: err,
      },
    );
  }
}

function expired(session: LiveSession, error: WardError): WardError {
  if (error.code !== 'ERR_ACCESS_NO_GRANT') return error;
  return new WardError(
    'ERR_ACCESS_GRANT_EXPIRED',
    'permission_denied',
    `your access to "${session.connection}" has ended: the grant expired or its time window closed`,
  );
}

function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}
