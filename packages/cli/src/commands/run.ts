import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type AgentConnection, loadAgentConfig, resolveAgentSecrets, startAgent } from '@ward/agent';
import { loadGatewayConfig, oidcIssuerOptions, startGateway } from '@ward/gateway';
import { formatHostPort } from '@ward/protocol';
import type { Command } from 'commander';
import { print } from '../output.js';

/** Resolves when the process is asked to stop (Ctrl-C, systemd stop). */
function untilSignal(): Promise<string> {
  return new Promise((done) => {
    process.once('SIGINT', () => done('SIGINT'));
    process.once('SIGTERM', () => done('SIGTERM'));
  });
}

export function registerRun(program: Command): void {
  program
    .command('gateway')
    .description(
      'Run the gateway from its YAML config (listeners, store, agents, connections).\n' +
        'Logs are JSON lines on stdout. See examples/gateway.yaml and docs/configuration.md.',
    )
    .requiredOption('-c, --config <file>', 'gateway config file (YAML)')
    .action(async (opts: { config: string }) => {
      const config = loadGatewayConfig(resolve(opts.config));
      const gateway = await startGateway({
        dataDir: config.dataDir,
        listen: {
          http: formatHostPort(config.listen.http),
          tunnel: formatHostPort(config.listen.tunnel),
          postgres: formatHostPort(config.listen.postgres),
          ssh: formatHostPort(config.listen.ssh),
        },
        tunnel: {
          tls: config.tunnel.tls
            ? { cert: readFileSync(config.tunnel.tls.cert), key: readFileSync(config.tunnel.tls.key) }
            : undefined,
          insecure: config.tunnel.insecure,
          sessionWindowBytes: config.tunnel.sessionWindow,
          keepaliveIntervalMs: config.tunnel.keepaliveInterval,
          maxFrameBytes: config.tunnel.maxFrame,
        },
        postgres: {
          tls: config.postgres.tls
            ? { cert: readFileSync(config.postgres.tls.cert), key: readFileSync(config.postgres.tls.key) }
            : undefined,
        },
        store: { path: config.store.path, durability: config.store.durability },
        agents: config.agents,
        connections: config.connections,
        identity: { oidc: oidcIssuerOptions(config.identity) },
        access: {
          grants: config.access.grants,
          maxJitDurationMs: config.access.jit.maxDuration,
          serviceTokenTtlMs: config.access.serviceAccounts.tokenTtl,
          exchangeTokenTtlMs: config.access.tokenExchange.ttl,
        },
      });
      process.stderr.write(
        `ward gateway: http ${gateway.httpUrl}, agent tunnel port ${gateway.tunnelPort}, postgres port ${gateway.postgresPort}, ssh port ${gateway.ssh?.port}, data ${config.dataDir}\n` +
          `  SSH host key ${gateway.ssh?.hostKeyFingerprint} (pin it: ssh-keyscan -p ${gateway.ssh?.port} <host>)\n` +
          `  first admin token: ward token issue --data-dir ${config.dataDir} --subject <you> --role admin\n`,
      );
      const signal = await untilSignal();
      gateway.logger.info({ signal }, 'stopping');
      await gateway.stop();
    });

  program
    .command('agent')
    .description(
      'Run an agent: it dials the gateway (no inbound port), authenticates with its key, and serves the\n' +
        'connections in its config with the credentials there. See examples/agent.yaml.',
    )
    .requiredOption('-c, --config <file>', 'agent config file (YAML)')
    .action(async (opts: { config: string }) => {
      const config = loadAgentConfig(resolve(opts.config));
      const secrets = resolveAgentSecrets(config);
      const connections: AgentConnection[] = [];
      for (const c of config.connections) {
        if (c.type === 'http') {
          connections.push({
            type: 'http',
            name: c.name,
            url: c.url,
            timeoutMs: c.timeout,
            ...(c.auth
              ? {
                  auth: {
                    header: c.auth.header,
                    ...(c.auth.scheme ? { scheme: c.auth.scheme } : {}),
                    secret: secrets.connection(c.name) ?? '',
                  },
                }
              : {}),
          });
        } else if (c.type === 'postgres') {
          const password = secrets.connection(c.name);
          connections.push({
            type: 'postgres',
            name: c.name,
            host: c.host,
            port: c.port,
            database: c.database,
            user: c.user,
            ...(password !== undefined ? { password } : {}),
            tls: { mode: c.tls.mode, ...(c.tls.ca ? { ca: readFileSync(c.tls.ca) } : {}) },
            maxScramIterations: c.maxScramIterations,
          });
        } else if (c.type === 'ssh') {
          const secret = secrets.connection(c.name);
          connections.push({
            type: 'ssh',
            name: c.name,
            host: c.host,
            port: c.port,
            user: c.user,
            ...(secret !== undefined ? (c.privateKey ? { privateKey: secret } : { password: secret }) : {}),
            hostKey: c.hostKey,
          });
        }
      }
      const agent = startAgent({
        gateway: {
          address: formatHostPort(config.gateway.address),
          insecure: config.gateway.insecure,
          ca: config.gateway.ca ? readFileSync(config.gateway.ca) : undefined,
          serverName: config.gateway.serverName,
        },
        key: secrets.key,
        connections,
        idleStreams: config.idleStreams,
        initialDelayMs: config.reconnect.initialDelay,
        maxDelayMs: config.reconnect.maxDelay,
      });
      print(`ward agent: dialing ${formatHostPort(config.gateway.address)}`);
      const signal = await untilSignal();
      process.stderr.write(`${signal}: stopping the agent\n`);
      await agent.stop();
    });
}
