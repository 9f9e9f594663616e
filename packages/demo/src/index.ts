export {
  type CardBrand,
  type DemoCountry,
  type FakeCustomer,
  type FakePayment,
  fakeCardNumber,
  fakeCustomer,
  fakeIban,
  fakeNote,
  fakePayment,
  fakeSsn,
  fakeTimestamp,
  type IbanCountry,
  ibanValid,
  luhnCheckDigit,
  luhnValid,
} from './generators.js';
export { type DemoPostgres, type DemoPostgresOptions, startDemoPostgres } from './postgres/demo-postgres.js';
export { demoRows, SEED, SEED_COUNTS, seedDemoDatabase } from './postgres/seed.js';
export { createRng, type Rng } from './rng.js';
export { DEMO_SSHD_PATH, type DemoSshd, demoSshdMissing, startDemoSshd } from './sshd/demo-sshd.js';
export { type DemoUpstream, type DemoUpstreamOptions, startDemoUpstream } from './upstream/demo-upstream.js';
export { DEMO_MODELS, type DemoModel } from './upstream/models.js';
export { countTokens, DEMO_REPLY_PII, embed, splitTokens } from './upstream/text.js';
