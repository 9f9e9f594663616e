/**
 * Summarises a V8 `.cpuprofile` (node --cpu-prof): the top frames by self time and by total
 * (inclusive) time, with their share of the sampled time.
 *
 *   node bench/dist/pg/profile-top.js gateway.cpuprofile [--top 25] [--skip-idle-head]
 *
 * `--skip-idle-head` drops everything before the last stretch of at least 2 s of idle samples
 * (start-up, and the other paths' runs while this process waited), so the figures describe the
 * measurement that came last, e.g. `--modes c=1` in the Postgres bench.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node bench/dist/pg/profile-top.js FILE.cpuprofile [--top N]\n');
  process.exit(2);
}
const topIndex = process.argv.indexOf('--top');
const TOP = topIndex > 0 ? Number(process.argv[topIndex + 1]) : 25;
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const label = (n: ProfileNode) => {
  const url = n.callFrame.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\/\.pnpm\/[^/]+\/node_modules\//, '');
  const short = url.replace(/^.*\/(packages|bench)\//, '$1/');
  return `${n.callFrame.functionName || '(anonymous)'} ${short ? `${short}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
};

const selfUs = new Map<string, number>();
const totalUs = new Map<string, number>();
let sampled = 0;
let from = 0;
if (process.argv.includes('--skip-idle-head')) {
  let idleSince = -1;
  let idleUs = 0;
  profile.samples.forEach((id, i) => {
    const idle = byId.get(id)?.callFrame.functionName === '(idle)';
    if (!idle) {
      if (idleUs >= 2e6) from = i;
      idleSince = -1;
      idleUs = 0;
      return;
    }
    if (idleSince < 0) idleSince = i;
    idleUs += profile.timeDeltas[i] ?? 0;
  });
}
profile.samples.forEach((id, i) => {
  if (i < from) return;
  const dt = profile.timeDeltas[i] ?? 0;
  sampled += dt;
  const node = byId.get(id);
  if (!node) return;
  const own = label(node);
  selfUs.set(own, (selfUs.get(own) ?? 0) + dt);
  // Inclusive time: each distinct frame on the stack once, so recursion is not double-counted.
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const n = byId.get(cur);
    if (!n) break;
    const l = label(n);
    if (seen.has(l)) continue;
    seen.add(l);
    totalUs.set(l, (totalUs.get(l) ?? 0) + dt);
  }
});

const print = (title: string, map: Map<string, number>) => {
  process.stdout.write(`${title} (of ${(sampled / 1e6).toFixed(2)} s sampled)\n`);
  for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
    process.stdout.write(
      `${((us / sampled) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}\n`,
    );
  }
};
print('self time', selfUs);
process.stdout.write('\n');
print('total time', totalUs);
