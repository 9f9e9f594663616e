import type { AccessAction, AccessGrantConfig, AccessWindowConfig, Weekday } from '../config/access-config.js';

const DAY_MS = 86_400_000;
const WEEKDAY_BY_UTC_DAY: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** `*` matches every connection, `prod-*` every name starting with `prod-`, anything else itself. */
export function connectionMatches(pattern: string, connection: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return connection.startsWith(pattern.slice(0, -1));
  return pattern === connection;
}

/**
 * Whether a UTC window is open at `now`, and until when. A window whose `to` is not after its
 * `from` runs past midnight into the next day; `days` names the day it starts on. Adjacent or
 * overlapping intervals are not merged: the gateway checks again when one closes, and a
 * session that another open interval still covers goes on.
 */
export function windowOpenUntil(window: AccessWindowConfig, now: number): number | undefined {
  const today = Math.floor(now / DAY_MS) * DAY_MS;
  let until: number | undefined;
  // An overnight interval that started yesterday may still be open.
  for (const dayStart of [today - DAY_MS, today]) {
    const weekday = WEEKDAY_BY_UTC_DAY[new Date(dayStart).getUTCDay()] as Weekday;
    if (window.days && !window.days.includes(weekday)) continue;
    const start = dayStart + window.from * 1000;
    const end = dayStart + window.to * 1000 + (window.to <= window.from ? DAY_MS : 0);
    if (start <= now && now < end) until = Math.max(until ?? 0, end);
  }
  return until;
}

export interface StaticGrantMatch {
  grant: AccessGrantConfig;
  /** Epoch ms when the window that allows it closes; Infinity without windows. */
  validUntil: number;
}

/**
 * The config grant that allows `label` (or one of `groups`) to do `action` on `connection` at
 * `now`, preferring the one that lasts longest; undefined when none does.
 */
export function matchStaticGrant(
  grants: readonly AccessGrantConfig[],
  who: { label: string; groups: readonly string[] },
  connection: string,
  action: AccessAction,
  now: number,
): StaticGrantMatch | undefined {
  let best: StaticGrantMatch | undefined;
  for (const grant of grants) {
    if (!grant.actions.includes(action)) continue;
    if (!grant.identities.includes(who.label) && !grant.groups.some((g) => who.groups.includes(g))) continue;
    if (!grant.connections.some((p) => connectionMatches(p, connection))) continue;
    let validUntil = grant.windows.length === 0 ? Number.POSITIVE_INFINITY : undefined;
    for (const w of grant.windows) {
      const until = windowOpenUntil(w, now);
      if (until !== undefined) validUntil = Math.max(validUntil ?? 0, until);
    }
    if (validUntil === undefined) continue;
    if (!best || validUntil > best.validUntil) best = { grant, validUntil };
  }
  return best;
}
