/** What an SSH login name selects: the ward connection, and the remote login on the host. */
export interface SshTarget {
  connection: string;
  /** The remote login; empty means the agent's configured user for that connection. */
  user: string;
}

// Same shape as connection names in the config (nameField): 1-63 of a-z 0-9 - _.
const CONNECTION = /^[a-z0-9][a-z0-9_-]{0,62}$/;
// POSIX portable user names (IEEE 1003.1 §3.437) plus the trailing `$` Samba machine accounts use.
const REMOTE_USER = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$/;

/**
 * Parses the SSH user name a client sends: `<connection>` (log in as the agent's configured
 * user) or `<remote-user>@<connection>`, e.g. `ssh -p 7422 -l deploy@prod-web gateway-host`.
 * Returns undefined for anything else (the caller disconnects after authentication, so the
 * names of connections never leak to someone without a credential).
 *
 * @example
 * parseSshUsername('deploy@prod-web'); // { connection: 'prod-web', user: 'deploy' }
 * parseSshUsername('prod-web');        // { connection: 'prod-web', user: '' }
 */
export function parseSshUsername(username: string): SshTarget | undefined {
  const at = username.lastIndexOf('@');
  const connection = at === -1 ? username : username.slice(at + 1);
  const user = at === -1 ? '' : username.slice(0, at);
  if (!CONNECTION.test(connection)) return undefined;
  if (at !== -1 && !REMOTE_USER.test(user)) return undefined;
  return { connection, user };
}

/**
 * The target of a `ward connect` SSH client: the tunnel fixed the connection, so the user name
 * is the remote login. `<connection>` alone and `<remote-user>@<connection>` (the listener's
 * forms, naming the same connection) are accepted too, so one habit works on both paths.
 */
export function connectTarget(username: string, connection: string): SshTarget | undefined {
  const parsed = parseSshUsername(username);
  if (parsed?.connection === connection) return parsed;
  const bare = parseSshUsername(`${username}@${connection}`);
  return bare && !username.includes('@') ? bare : undefined;
}
