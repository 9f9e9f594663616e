import { readFileSync, statSync } from 'node:fs';
import { pathField, problem, WardError } from '@ward/protocol';
import * as z from 'zod';

/**
 * Where a credential comes from. In production it is `{ env }` or `{ file }`; `{ value }`
 * writes the secret into the config itself and exists for demos only.
 */
export type SecretRef =
  | { readonly env: string }
  | { readonly file: string; readonly allowInsecurePermissions: boolean }
  | { readonly value: string };

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const REF_FORMS = '{ env: NAME } or { file: /path/to/secret } ({ value: "…" } for demos only)';

/** Schema of a secret reference; `file` paths resolve against `baseDir`. */
export function secretRefSchema(baseDir: string) {
  return z
    .strictObject(
      {
        env: z
          .string()
          .regex(ENV_NAME, {
            error: (issue) =>
              problem(
                `${JSON.stringify(issue.input)} is not an environment variable name`,
                'use letters, digits and "_", e.g. PG_PASSWORD',
              ),
          })
          .optional(),
        file: pathField(baseDir).optional(),
        value: z.string().optional(),
        allowInsecurePermissions: z.boolean().optional(),
      },
      {
        error: (issue) =>
          issue.input === undefined
            ? undefined
            : typeof issue.input === 'string' || typeof issue.input === 'number'
              ? problem('a credential written inline is not allowed', `write ${REF_FORMS}`)
              : problem('expected a secret reference', `write ${REF_FORMS}`),
      },
    )
    .superRefine((ref, ctx) => {
      const forms = (['env', 'file', 'value'] as const).filter((k) => ref[k] !== undefined);
      if (forms.length !== 1) {
        ctx.addIssue({
          code: 'custom',
          message: problem(
            forms.length === 0
              ? 'the secret reference names no source'
              : `the secret reference has ${forms.join(' and ')}; it needs exactly one`,
            `write ${REF_FORMS}`,
          ),
        });
      }
      if (ref.allowInsecurePermissions !== undefined && ref.file === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['allowInsecurePermissions'],
          message: problem('allowInsecurePermissions only applies to { file: … } references', 'remove it'),
        });
      }
    })
    .transform((ref): SecretRef => {
      if (ref.env !== undefined) return { env: ref.env };
      if (ref.file !== undefined)
        return { file: ref.file, allowInsecurePermissions: ref.allowInsecurePermissions ?? false };
      return { value: ref.value ?? '' };
    })
    .describe(`a secret reference: ${REF_FORMS}`);
}

export interface ResolveSecretOptions {
  /** Field path used in error messages, e.g. `connections[0].password`. */
  field?: string;
  /** Where `{ env }` references are looked up; defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
}

// Group/other read bits. Matches the brief: a secret file readable by anyone but its owner is
// refused (OpenSSH refuses private keys on the same grounds).
const SHARED_READ_BITS = 0o044;

/**
 * Reads the secret a reference points at. A missing or empty environment variable, a missing
 * or empty file, and a file readable by group/others (unless `allowInsecurePermissions`) are
 * refused with an error naming the field. Files lose their trailing newline(s).
 *
 * @example
 * resolveSecret({ env: 'WARD_AGENT_KEY' }, { field: 'key' });
 * @throws WardError ERR_CONFIG_SECRET_MISSING, ERR_CONFIG_SECRET_INSECURE
 */
export function resolveSecret(ref: SecretRef, options: ResolveSecretOptions = {}): string {
  const field = options.field ?? 'secret';
  if ('env' in ref) {
    const value = (options.env ?? process.env)[ref.env];
    if (value === undefined || value === '') {
      throw missing(
        `${field}: environment variable ${ref.env} is ${value === undefined ? 'not set' : 'empty'}`,
        `set ${ref.env} in the agent's environment (e.g. an EnvironmentFile= line in its systemd unit), or point ${field} at a file`,
      );
    }
    return value;
  }
  if ('file' in ref) {
    let mode: number;
    try {
      const st = statSync(ref.file);
      if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTFILE' });
      mode = st.mode;
    } catch (err) {
      throw missing(`${field}: secret file ${ref.file} ${describeFsError(err)}`, `create it or correct the path`, err);
    }
    if (process.platform !== 'win32' && (mode & SHARED_READ_BITS) !== 0 && !ref.allowInsecurePermissions) {
      const octal = (mode & 0o777).toString(8).padStart(4, '0');
      throw new WardError(
        'ERR_CONFIG_SECRET_INSECURE',
        'permission_denied',
        problem(
          `${field}: secret file ${ref.file} is readable by group or others (mode ${octal})`,
          `run chmod 600 ${ref.file}, or add allowInsecurePermissions: true to this reference if that is intended`,
        ),
      );
    }
    let text: string;
    try {
      text = readFileSync(ref.file, 'utf8');
    } catch (err) {
      throw missing(
        `${field}: secret file ${ref.file} ${describeFsError(err)}`,
        'make it readable by the agent user',
        err,
      );
    }
    const value = text.replace(/[\r\n]+$/, '');
    if (value === '') throw missing(`${field}: secret file ${ref.file} is empty`, 'write the secret into it');
    return value;
  }
  return ref.value;
}

function missing(what: string, fix: string, cause?: unknown): WardError {
  return new WardError(
    'ERR_CONFIG_SECRET_MISSING',
    'not_found',
    problem(what, fix),
    cause === undefined ? {} : { cause },
  );
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EACCES' || code === 'EPERM') return 'is not readable by the agent user';
  if (code === 'ENOTFILE' || code === 'EISDIR') return 'is not a regular file';
  return `cannot be read (${code ?? String(err)})`;
}
