// No Docker engine runs in CI, so the deployable example is checked against the code instead:
// real commands, configs that validate, the documented ports, and an agent that can reach
// the gateway it names.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAgentConfig } from '@ward/agent';
import { createProgram } from '@ward/cli';
import { GATEWAY_DEFAULTS, parseGatewayConfig } from '@ward/gateway';
import { parse } from 'yaml';

const root = process.env['WARD_REPO_ROOT'] ?? new URL('../..', import.meta.url).pathname;

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  entrypoint?: string[];
  ports?: string[];
  volumes?: string[];
}

const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service> };
const services = compose.services;

/** The host file mounted at `target` in a service, resolved in the repo. */
function mounted(service: Service, target: string): string {
  const volume = (service.volumes ?? []).find((v) => v.split(':')[1] === target);
  assert.ok(volume, `nothing is mounted at ${target}`);
  return join(root, volume.split(':')[0] ?? '');
}

test('docker-compose.yml names a gateway, an agent, a Postgres and an sshd, each buildable or a real image', () => {
  for (const name of ['gateway', 'agent', 'postgres', 'sshd', 'certs']) assert.ok(services[name], `service ${name}`);
  for (const [name, service] of Object.entries(services)) {
    if (service.build)
      assert.ok(existsSync(join(root, service.build, 'Dockerfile')), `${name}: no Dockerfile in ${service.build}`);
    else assert.match(service.image ?? '', /^[a-z0-9./-]+:[a-z0-9._-]+$/, `${name}: image must be name:tag`);
  }
  assert.equal(services['postgres']?.image, 'postgres:15');
  assert.match(services['sshd']?.image ?? '', /openssh-server/);
  const certs = services['certs']?.entrypoint ?? [];
  assert.ok(existsSync(join(root, (certs[1] ?? '').replace('/opt/ward/', ''))), 'the certs script exists in the repo');
});

test('the gateway and agent services run real ward commands', () => {
  const commands = new Set(createProgram().commands.map((c) => c.name()));
  for (const name of ['gateway', 'agent']) {
    const command = services[name]?.command ?? [];
    assert.ok(commands.has(command[0] ?? ''), `${name}: "${command[0]}" is not a ward command`);
    assert.equal(command[1], '--config');
  }
});

test('published ports are the documented defaults, on the host loopback only', () => {
  const ports = (services['gateway']?.ports ?? []).map((p) => p.split(' ')[0] ?? '');
  const expected = [
    GATEWAY_DEFAULTS.listen.http.port,
    GATEWAY_DEFAULTS.listen.postgres.port,
    GATEWAY_DEFAULTS.listen.ssh.port,
  ];
  assert.deepEqual(
    ports.map((p) => Number(p.split(':')[2])),
    expected,
  );
  for (const p of ports) assert.ok(p.startsWith('127.0.0.1:'), `${p} must bind the host loopback`);
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  for (const port of [...expected, GATEWAY_DEFAULTS.listen.tunnel.port])
    assert.ok(readme.includes(String(port)), `README mentions ${port}`);
  for (const s of ['agent', 'postgres', 'sshd']) assert.equal(services[s]?.ports, undefined, `${s} publishes nothing`);
});

test('the compose configs validate, use TLS off loopback, and agree on agent, address and connections', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-compose-'));
  try {
    mkdirSync(join(dir, 'tls'));
    for (const f of ['gateway.crt', 'gateway.key', 'ca.crt']) writeFileSync(join(dir, 'tls', f), 'placeholder\n');
    // What deploy/compose/keys/README.md asks the operator to put there.
    mkdirSync(join(dir, 'keys'));
    for (const f of ['id_ed25519', 'known_hosts'])
      writeFileSync(join(dir, 'keys', f), 'placeholder\n', { mode: 0o600 });
    const gatewayText = readFileSync(mounted(services['gateway'] ?? {}, '/etc/ward/gateway.yaml'), 'utf8');
    const agentText = readFileSync(mounted(services['agent'] ?? {}, '/etc/ward/agent.yaml'), 'utf8');
    const gateway = parseGatewayConfig(gatewayText, join(dir, 'gateway.yaml'));
    const agent = parseAgentConfig(agentText, join(dir, 'agent.yaml'));
    assert.equal(gateway.tunnel.insecure, false);
    assert.ok(gateway.tunnel.tls);
    assert.equal(agent.gateway.insecure, false);
    assert.equal(agent.gateway.address.host, 'gateway');
    assert.equal(agent.gateway.address.port, gateway.listen.tunnel.port);
    assert.deepEqual(agent.connections.map((c) => c.name).sort(), gateway.connections.map((c) => c.name).sort());
    for (const c of gateway.connections) {
      const served = agent.connections.find((a) => a.name === c.name);
      assert.equal(served?.type, c.type, c.name);
      assert.equal(c.agent, gateway.agents[0]?.name);
    }
    assert.equal(readFileSync(join(root, 'docker-compose.yml'), 'utf8').includes('WARD_AGENT_KEY'), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
