import { durationField, enumField, problem } from '@ward/protocol';
import * as z from 'zod';

export type AccessAction = 'connect' | 'exec';
export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';

/** A daily window in UTC: `from` inclusive, `to` exclusive; `to` ≤ `from` runs past midnight. */
export interface AccessWindowConfig {
  /** Days the window starts on; all seven when absent. */
  readonly days?: readonly Weekday[] | undefined;
  /** Seconds after 00:00 UTC. */
  readonly from: number;
  /** Seconds after 00:00 UTC (86400 for 24:00). */
  readonly to: number;
}

export interface AccessGrantConfig {
  /** Names the grant in every decision it makes (`grant:<id>` in the audit log). */
  readonly id: string;
  /** Identity labels (`user:alice`, `service:etl-bot`); a bare name means `user:<name>`. */
  readonly identities: readonly string[];
  /** Group names from the token (`groups` claim) or the service account. */
  readonly groups: readonly string[];
  /** Connection names, `*`, or prefixes ending in `*` (`prod-*`). */
  readonly connections: readonly string[];
  readonly actions: readonly AccessAction[];
  /** UTC windows; none: at all times. */
  readonly windows: readonly AccessWindowConfig[];
}

export interface AccessConfig {
  readonly grants: readonly AccessGrantConfig[];
  readonly jit: {
    /** Longest grant a request may ask for, in ms (default 8 h). */
    readonly maxDuration: number;
  };
  readonly serviceAccounts: {
    /** Lifetime of tokens from `POST /api/v1/token`, in ms (default 10 min). */
    readonly tokenTtl: number;
  };
  readonly tokenExchange: {
    /** Longest lifetime of a gateway token exchanged for a person's IdP token, in ms (default 1 h; never past the IdP token's expiry). */
    readonly ttl: number;
  };
}

export const ACCESS_DEFAULTS = Object.freeze({
  jitMaxDuration: 8 * 3_600_000,
  serviceTokenTtl: 10 * 60_000,
  exchangeTokenTtl: 3_600_000,
});

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const ACTIONS = ['connect', 'exec'] as const;
const TIME = /^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$/;

/** `HH:MM` or `HH:MM:SS` (UTC) to seconds after midnight; `24:00` is the end of the day. */
export function parseTimeOfDay(text: string): number | undefined {
  if (text === '24:00' || text === '24:00:00') return 86_400;
  const m = TIME.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] ?? 0);
}

const timeField = (what: string) =>
  z.string().transform((s, ctx) => {
    const seconds = parseTimeOfDay(s);
    if (seconds === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: problem(`${JSON.stringify(s)} is not a time of day for ${what}`, "write HH:MM in UTC, e.g. '08:00'"),
      });
      return z.NEVER;
    }
    return seconds;
  });

const LABEL = /^(user|service):[^\s:]{1,200}$/;
const identityEntry = z.string().transform((s, ctx) => {
  const label = s.includes(':') ? s : `user:${s}`;
  if (!LABEL.test(label)) {
    ctx.addIssue({
      code: 'custom',
      message: problem(
        `${JSON.stringify(s)} is not an identity`,
        'write user:<subject> or service:<account name> (a bare name means user:<name>)',
      ),
    });
    return z.NEVER;
  }
  return label;
});

const CONNECTION_PATTERN = /^(\*|[a-z0-9][a-z0-9_-]{0,62}\*?)$/;

/**
 * `access:` in the gateway's file: static grants, just-in-time limits, service-account token
 * lifetime. Without grants only admins open sessions (see README "Access").
 */
export function accessConfigSchema() {
  return z
    .strictObject({
      grants: z
        .array(
          z
            .strictObject({
              id: z
                .string()
                .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, {
                  error: () => problem('a grant id is lower-case letters, digits, - and _', 'e.g. id: dba-weekdays'),
                })
                .optional(),
              identities: z.array(identityEntry).default([]).describe('[user:alice, service:etl-bot]'),
              groups: z.array(z.string().min(1)).default([]).describe('[dba, oncall]'),
              connections: z
                .array(
                  z.string().regex(CONNECTION_PATTERN, {
                    error: (issue) =>
                      problem(
                        `${JSON.stringify(issue.input)} is not a connection name or pattern`,
                        "write a connection name, '*' for all, or a prefix such as 'prod-*'",
                      ),
                  }),
                )
                .min(1, { error: () => problem('a grant names no connection', "add connections: ['prod-pg']") }),
              actions: z.array(enumField(ACTIONS, 'an action')).min(1).default(['connect', 'exec']),
              windows: z
                .array(
                  z.strictObject({
                    days: z.array(enumField(WEEKDAYS, 'a weekday')).min(1).optional(),
                    from: timeField('from'),
                    to: timeField('to'),
                  }),
                )
                .default([])
                .describe("[{ days: [mon, tue, wed, thu, fri], from: '08:00', to: '18:00' }]"),
            })
            .superRefine((g, ctx) => {
              if (g.identities.length === 0 && g.groups.length === 0)
                ctx.addIssue({
                  code: 'custom',
                  path: ['identities'],
                  message: problem('a grant names no identity and no group', 'add identities: [...] or groups: [...]'),
                });
            }),
        )
        .default([])
        .transform((grants) => grants.map((g, i) => ({ ...g, id: g.id ?? `grant-${i + 1}` })))
        .superRefine((grants, ctx) => {
          const seen = new Set<string>();
          grants.forEach((g, i) => {
            if (seen.has(g.id))
              ctx.addIssue({
                code: 'custom',
                path: [i, 'id'],
                message: problem(`grant id "${g.id}" is used twice`, 'give each grant its own id'),
              });
            seen.add(g.id);
          });
        }),
      jit: z
        .strictObject({
          maxDuration: durationField().default(ACCESS_DEFAULTS.jitMaxDuration),
        })
        .prefault({}),
      serviceAccounts: z
        .strictObject({
          tokenTtl: durationField().default(ACCESS_DEFAULTS.serviceTokenTtl),
        })
        .prefault({}),
      tokenExchange: z
        .strictObject({
          ttl: durationField().default(ACCESS_DEFAULTS.exchangeTokenTtl),
        })
        .prefault({}),
    })
    .prefault({});
}
