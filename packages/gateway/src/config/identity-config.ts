import { durationField, enumField, isLoopback, problem } from '@ward/protocol';
import * as z from 'zod';
import { OIDC_ALGORITHMS, type OidcAlgorithm, type OidcIssuerOptions } from '../identity/oidc-verifier.js';
import type { Role } from '../identity/token-service.js';

/** One trusted OIDC issuer as written under `identity.oidc` (durations in ms). */
export interface OidcIssuerConfig {
  readonly issuer: string;
  readonly audience: readonly string[];
  readonly clientId?: string | undefined;
  readonly algorithms: readonly OidcAlgorithm[];
  readonly subjectClaim: string;
  readonly groupsClaim: string;
  readonly roles: Readonly<Partial<Record<Role, readonly string[] | undefined>>>;
  readonly defaultRoles: readonly Role[];
  readonly clockTolerance: number;
  readonly jwksCacheMaxAge: number;
  readonly jwksCooldown: number;
  readonly requireAccessTokenType: boolean;
  readonly jwksUri?: string | undefined;
}

export interface GatewayIdentityConfig {
  readonly oidc: readonly OidcIssuerConfig[];
}

export const IDENTITY_DEFAULTS = Object.freeze({
  audience: 'urn:ward',
  algorithms: Object.freeze(['RS256', 'PS256', 'ES256', 'EdDSA'] as const),
  subjectClaim: 'sub',
  groupsClaim: 'groups',
  defaultRoles: Object.freeze(['user'] as const),
  clockTolerance: 30_000,
  jwksCacheMaxAge: 10 * 60_000,
  jwksCooldown: 30_000,
});

const ROLES = ['admin', 'approver', 'auditor', 'user'] as const;
const CLAIM_PATH = /^[A-Za-z_][A-Za-z0-9_:-]*(\.[A-Za-z_][A-Za-z0-9_:-]*)*$/;

/** An https URL, or http on a loopback host (a test or local IdP). */
function issuerUrl(what: string, example: string) {
  return z
    .string({
      error: (issue) =>
        issue.input === undefined ? undefined : problem(`expected ${what} as a URL`, `write e.g. ${example}`),
    })
    .superRefine((text, ctx) => {
      const url = URL.canParse(text) ? new URL(text) : undefined;
      if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
        ctx.addIssue({
          code: 'custom',
          message: problem(`${JSON.stringify(text)} is not a URL`, `write e.g. ${example}`),
        });
      } else if (url.protocol === 'http:' && !isLoopback({ host: url.hostname.replace(/^\[|\]$/g, ''), port: 0 })) {
        ctx.addIssue({
          code: 'custom',
          message: problem(
            `${what} ${JSON.stringify(text)} is plain http on a non-loopback host: its keys could be swapped in transit`,
            `use the https:// URL of the IdP`,
          ),
        });
      } else if (url.search || url.hash) {
        ctx.addIssue({
          code: 'custom',
          message: problem(`${what} has a query or fragment`, `write it exactly as the IdP's tokens carry it in "iss"`),
        });
      }
    })
    .describe(`${what}, e.g. ${example}`);
}

const claimField = (fallback: string) =>
  z
    .string()
    .regex(CLAIM_PATH, {
      error: (issue) =>
        problem(
          `${JSON.stringify(issue.input)} is not a claim name`,
          'write a claim name, or a dotted path for a nested claim, e.g. groups or realm_access.roles',
        ),
    })
    .default(fallback)
    .describe(`a claim name, e.g. ${fallback}`);

const algorithmField = z.unknown().transform((input, ctx): OidcAlgorithm => {
  if (typeof input === 'string' && (OIDC_ALGORITHMS as readonly string[]).includes(input))
    return input as OidcAlgorithm;
  const text = typeof input === 'string' ? input : String(input);
  const never = /^(none|HS\d+)$/i.test(text);
  ctx.addIssue({
    code: 'custom',
    message: never
      ? problem(
          `${JSON.stringify(text)} is never accepted: anyone who knows the IdP's public key (or nothing at all) could mint tokens`,
          `remove it; use asymmetric algorithms only (${IDENTITY_DEFAULTS.algorithms.join(', ')})`,
        )
      : problem(
          `${JSON.stringify(text)} is not a signature algorithm ward accepts`,
          `use some of ${OIDC_ALGORITHMS.join(', ')}`,
        ),
  });
  return z.NEVER;
});

const groupList = z
  .array(z.string().min(1, { error: () => problem('a group name is empty', 'write the group as the IdP names it') }))
  .optional()
  .describe('a list of group names, e.g. [platform-admins]');

/** The `identity:` section of the gateway file. */
export function identityConfigSchema() {
  return z
    .strictObject({
      oidc: z
        .array(
          z.strictObject({
            issuer: issuerUrl('the issuer', 'https://login.example.com/realms/acme'),
            audience: z
              .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
              .default(IDENTITY_DEFAULTS.audience)
              .transform((a) => (typeof a === 'string' ? [a] : a))
              .describe('the audience (aud) the IdP puts in access tokens for ward, e.g. urn:ward'),
            clientId: z.string().min(1).optional().describe('the public client `ward login` uses, e.g. ward-cli'),
            algorithms: z
              .array(algorithmField)
              .min(1, { error: () => problem('no algorithm is allowed', 'list at least one, e.g. [RS256]') })
              .default([...IDENTITY_DEFAULTS.algorithms]),
            subjectClaim: claimField(IDENTITY_DEFAULTS.subjectClaim),
            groupsClaim: claimField(IDENTITY_DEFAULTS.groupsClaim),
            roles: z
              .strictObject({ admin: groupList, approver: groupList, auditor: groupList, user: groupList })
              .default({})
              .describe('{ admin: [platform-admins], auditor: [security] }'),
            defaultRoles: z.array(enumField(ROLES, 'a role')).default([...IDENTITY_DEFAULTS.defaultRoles]),
            clockTolerance: durationField()
              .default(IDENTITY_DEFAULTS.clockTolerance)
              .refine((ms) => ms <= 5 * 60_000, {
                error: () => problem('clockTolerance is above 5m', 'fix the clocks (NTP) and keep this at 30s or so'),
              }),
            jwksCacheMaxAge: durationField()
              .default(IDENTITY_DEFAULTS.jwksCacheMaxAge)
              .refine((ms) => ms >= 1_000 && ms <= 24 * 3_600_000, {
                error: () => problem('jwksCacheMaxAge must be between 1s and 24h', 'write e.g. 10m'),
              }),
            jwksCooldown: durationField()
              .default(IDENTITY_DEFAULTS.jwksCooldown)
              .refine((ms) => ms >= 1_000, {
                error: () => problem('jwksCooldown is below 1s', 'write e.g. 30s (it bounds JWKS fetches)'),
              }),
            requireAccessTokenType: z.boolean().default(true),
            jwksUri: issuerUrl('jwksUri', 'https://login.example.com/jwks').optional(),
          }),
        )
        .default([])
        .superRefine((issuers, ctx) => {
          const seen = new Set<string>();
          issuers.forEach((i, n) => {
            if (seen.has(i.issuer)) {
              ctx.addIssue({
                code: 'custom',
                path: [n, 'issuer'],
                message: problem(`issuer ${i.issuer} is listed twice`, 'keep one entry per issuer'),
              });
            }
            seen.add(i.issuer);
          });
        }),
    })
    .prefault({})
    .describe('{ oidc: [{ issuer: https://login.example.com, audience: urn:ward, clientId: ward-cli }] }');
}

/** What the gateway's Authenticator takes, from the `identity.oidc` section. */
export function oidcIssuerOptions(identity: GatewayIdentityConfig): OidcIssuerOptions[] {
  return identity.oidc.map((i) => ({
    issuer: i.issuer,
    audience: i.audience,
    clientId: i.clientId,
    algorithms: i.algorithms,
    subjectClaim: i.subjectClaim,
    groupsClaim: i.groupsClaim,
    roles: i.roles,
    defaultRoles: i.defaultRoles,
    clockToleranceSeconds: Math.round(i.clockTolerance / 1000),
    jwksCacheMaxAgeMs: i.jwksCacheMaxAge,
    jwksCooldownMs: i.jwksCooldown,
    requireAccessTokenType: i.requireAccessTokenType,
    jwksUri: i.jwksUri,
  }));
}
