/**
 * Environment variables a client may pass to the remote session (`SendEnv`/`SetEnv`). The list
 * is short on purpose: variables such as LD_PRELOAD, PATH, BASH_ENV or PROMPT_COMMAND change
 * what the remote shell runs, and sshd's own AcceptEnv is the host's second line, not the first.
 */
export function isAllowedEnv(name: string): boolean {
  if (name === 'LANG' || name === 'TERM') return true;
  if (/^LC_[A-Z_]{1,32}$/.test(name)) return true;
  return /^WARD_TEST_[A-Z0-9_]{1,64}$/.test(name);
}

/** Largest value passed on; locale and terminal names are short, test variables small. */
export const MAX_ENV_VALUE_BYTES = 4096;
