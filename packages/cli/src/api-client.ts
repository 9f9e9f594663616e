import { WardError } from '@ward/protocol';
import { loadCredentials } from './credentials.js';

export interface ApiTarget {
  gateway: string;
  token: string;
}

/** Where and as whom CLI commands talk to the gateway: flags, then env, then the token cache. */
export function resolveTarget(opts: { gateway?: string | undefined; token?: string | undefined }): ApiTarget {
  const saved = loadCredentials();
  const gateway = opts.gateway ?? process.env['WARD_GATEWAY'] ?? saved?.gateway;
  const token = opts.token ?? process.env['WARD_TOKEN'] ?? saved?.token;
  if (!gateway || !token) {
    throw new WardError(
      'ERR_CLI_NOT_LOGGED_IN',
      'unauthenticated',
      'not logged in: run `ward demo` (or `ward login`), or pass --gateway and set WARD_TOKEN',
    );
  }
  return { gateway: gateway.replace(/\/+$/, ''), token };
}

/** GETs a gateway API path; errors come back as WardErrors with the gateway's code. */
export async function apiGet(target: ApiTarget, path: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(`${target.gateway}${path}`, { headers: { authorization: `Bearer ${target.token}` } });
  } catch (err) {
    throw new WardError('ERR_CLI_GATEWAY_UNREACHABLE', 'unavailable', `cannot reach the gateway at ${target.gateway}`, {
      cause: err,
    });
  }
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string; type?: string } };
    throw new WardError(
      body.error?.code ?? 'ERR_INTERNAL',
      (body.error?.type as WardError['kind']) ?? 'internal',
      body.error?.message ?? `HTTP ${res.status}`,
    );
  }
  return res;
}

export async function apiJson<T>(target: ApiTarget, path: string): Promise<T> {
  return (await (await apiGet(target, path)).json()) as T;
}

/** Sends a JSON body (or none) with any method; errors come back as WardErrors with the gateway's code. */
export async function apiSend<T>(target: ApiTarget, method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${target.gateway}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${target.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    throw new WardError('ERR_CLI_GATEWAY_UNREACHABLE', 'unavailable', `cannot reach the gateway at ${target.gateway}`, {
      cause: err,
    });
  }
  const json = (await res.json().catch(() => ({}))) as T & {
    error?: { code?: string; message?: string; type?: string };
  };
  if (!res.ok) {
    throw new WardError(
      json.error?.code ?? 'ERR_INTERNAL',
      (json.error?.type as WardError['kind']) ?? 'internal',
      json.error?.message ?? `HTTP ${res.status}`,
    );
  }
  return json;
}
