import type { PGlite } from '@electric-sql/pglite';
import {
  type FakeCustomer,
  type FakePayment,
  fakeCustomer,
  fakeNote,
  fakePayment,
  fakeTimestamp,
} from '../generators.js';
import { createRng } from '../rng.js';

/** Row counts of a freshly seeded demo database. */
export const SEED_COUNTS = Object.freeze({ customers: 500, payments: 2000, auditNotes: 200, sentinel: 1 });
/** The seed of the PRNG: change it and every demo row changes. */
export const SEED = 20240101;

const SCHEMA = `
CREATE TABLE customers (
  id serial PRIMARY KEY,
  full_name text NOT NULL,
  email text NOT NULL UNIQUE,
  phone text NOT NULL,
  date_of_birth date NOT NULL,
  street text NOT NULL,
  city text NOT NULL,
  postcode text NOT NULL,
  country char(2) NOT NULL,
  ssn text NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE TABLE payments (
  id serial PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers(id),
  amount_cents integer NOT NULL CHECK (amount_cents > 0),
  currency char(3) NOT NULL,
  card_number text NOT NULL,
  card_brand text NOT NULL,
  iban text NOT NULL,
  status text NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX payments_customer_id ON payments(customer_id);
CREATE TABLE audit_notes (
  id serial PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers(id),
  author text NOT NULL,
  note text NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE TABLE sentinel (
  id integer PRIMARY KEY,
  note text NOT NULL
);
`;

const lit = (value: string | number): string =>
  typeof value === 'number' ? String(value) : `'${value.replaceAll("'", "''")}'`;

/** Multi-row INSERTs in chunks: one statement per row would make seeding take seconds on PGlite. */
function inserts(table: string, columns: string[], rows: (string | number)[][], chunk = 250): string {
  const out: string[] = [];
  for (let i = 0; i < rows.length; i += chunk) {
    const values = rows.slice(i, i + chunk).map((r) => `(${r.map(lit).join(',')})`);
    out.push(`INSERT INTO ${table} (${columns.join(',')}) VALUES ${values.join(',')};`);
  }
  return out.join('\n');
}

/** The demo rows, generated the same way on every call (ids are 1-based, in insertion order). */
export function demoRows(): {
  customers: FakeCustomer[];
  payments: FakePayment[];
  notes: { customerId: number; author: string; note: string; createdAt: string }[];
} {
  const rng = createRng(SEED);
  const customers = Array.from({ length: SEED_COUNTS.customers }, (_, i) => fakeCustomer(rng, i + 1));
  const payments = Array.from({ length: SEED_COUNTS.payments }, () => {
    const customerId = rng.int(1, customers.length);
    return fakePayment(rng, customerId, (customers[customerId - 1] as FakeCustomer).country);
  });
  const notes = Array.from({ length: SEED_COUNTS.auditNotes }, () => {
    const payment = rng.pick(payments);
    const customer = customers[payment.customerId - 1] as FakeCustomer;
    return {
      customerId: payment.customerId,
      author: rng.pick(['support.lead@example.com', 'agent.kim@example.com', 'agent.ruiz@example.com']),
      note: fakeNote(rng, customer, payment),
      createdAt: fakeTimestamp(rng),
    };
  });
  return { customers, payments, notes };
}

/**
 * Creates and fills the demo schema unless it is already there. Everything runs in one
 * transaction and `sentinel` is created with the rest, so a half-seeded data dir cannot
 * pass for a seeded one. Returns whether it seeded.
 */
export async function seedDemoDatabase(db: PGlite): Promise<boolean> {
  const existing = await db.query<{ present: string | null }>(`SELECT to_regclass('public.sentinel')::text AS present`);
  if (existing.rows[0]?.present) return false;
  const { customers, payments, notes } = demoRows();
  const sql = [
    'BEGIN;',
    SCHEMA,
    inserts(
      'customers',
      ['full_name', 'email', 'phone', 'date_of_birth', 'street', 'city', 'postcode', 'country', 'ssn', 'created_at'],
      customers.map((c) => [
        c.fullName,
        c.email,
        c.phone,
        c.dateOfBirth,
        c.street,
        c.city,
        c.postcode,
        c.country,
        c.ssn,
        c.createdAt,
      ]),
    ),
    inserts(
      'payments',
      ['customer_id', 'amount_cents', 'currency', 'card_number', 'card_brand', 'iban', 'status', 'created_at'],
      payments.map((p) => [
        p.customerId,
        p.amountCents,
        p.currency,
        p.cardNumber,
        p.cardBrand,
        p.iban,
        p.status,
        p.createdAt,
      ]),
    ),
    inserts(
      'audit_notes',
      ['customer_id', 'author', 'note', 'created_at'],
      notes.map((n) => [n.customerId, n.author, n.note, n.createdAt]),
    ),
    `INSERT INTO sentinel (id, note) VALUES (1, 'if you can read this, no DROP TABLE reached the database');`,
    'COMMIT;',
  ].join('\n');
  await db.exec(sql);
  return true;
}
