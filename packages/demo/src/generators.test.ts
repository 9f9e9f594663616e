import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createRng,
  demoRows,
  fakeCardNumber,
  fakeCustomer,
  fakeIban,
  ibanValid,
  luhnCheckDigit,
  luhnValid,
  SEED_COUNTS,
} from './index.js';

describe('Luhn', () => {
  const cases: [string, boolean][] = [
    ['4111111111111111', true],
    ['4111 1111 1111 1111', true],
    ['5555555555554444', true],
    ['6011111111111117', true],
    ['79927398713', true],
    ['4111111111111112', false],
    ['79927398710', false],
    ['', false],
    ['4111-1111-1111-111a', false],
  ];
  for (const [input, expected] of cases) {
    test(`luhnValid(${JSON.stringify(input)}) is ${expected}`, () => assert.equal(luhnValid(input), expected));
  }
  test('luhnCheckDigit completes a number', () => assert.equal(luhnCheckDigit('7992739871'), '3'));
});

describe('IBAN', () => {
  const cases: [string, boolean][] = [
    ['GB82WEST12345698765432', true],
    ['GB82 WEST 1234 5698 7654 32', true],
    ['DE89370400440532013000', true],
    ['FR1420041010050500013M02606', true],
    ['NL91ABNA0417164300', true],
    ['GB82WEST12345698765433', false],
    ['DE8937040044053201300', false], // one digit short
    ['XX82WEST12345698765432', false],
  ];
  for (const [input, expected] of cases) {
    test(`ibanValid(${JSON.stringify(input)}) is ${expected}`, () => assert.equal(ibanValid(input), expected));
  }
});

describe('generators', () => {
  test('the same seed gives the same customers; another seed gives others', () => {
    const a = Array.from({ length: 20 }, (_, i) => fakeCustomer(createRng(7), i + 1));
    const b = Array.from({ length: 20 }, (_, i) => fakeCustomer(createRng(7), i + 1));
    assert.deepEqual(a, b);
    assert.notDeepEqual(fakeCustomer(createRng(8), 1), a[0]);
  });

  test('every generated card passes Luhn and every IBAN passes mod-97, for each brand and country', () => {
    const rng = createRng(99);
    let checked = 0;
    for (let i = 0; i < 500; i++) {
      for (const brand of ['visa', 'mastercard', 'discover'] as const) {
        const { cardNumber } = fakeCardNumber(rng, brand);
        assert.equal(cardNumber.length, 16);
        assert.ok(luhnValid(cardNumber), cardNumber);
        checked++;
      }
      for (const cc of ['DE', 'FR', 'GB', 'NL'] as const) {
        const iban = fakeIban(rng, cc);
        assert.ok(ibanValid(iban), iban);
        assert.ok(iban.startsWith(cc));
        checked++;
      }
    }
    assert.equal(checked, 500 * 7);
  });

  test('the demo rows: counts, valid cards and IBANs, well-formed SSNs, unique emails', () => {
    const { customers, payments, notes } = demoRows();
    assert.equal(customers.length, SEED_COUNTS.customers);
    assert.equal(payments.length, SEED_COUNTS.payments);
    assert.equal(notes.length, SEED_COUNTS.auditNotes);
    assert.equal(
      payments.filter((p) => luhnValid(p.cardNumber) && /^\d{16}$/.test(p.cardNumber)).length,
      payments.length,
    );
    assert.equal(payments.filter((p) => ibanValid(p.iban)).length, payments.length);
    for (const c of customers) {
      const m = /^(\d{3})-(\d{2})-(\d{4})$/.exec(c.ssn);
      assert.ok(m, c.ssn);
      assert.ok(m[1] !== '000' && m[1] !== '666' && !m[1]?.startsWith('9') && m[2] !== '00' && m[3] !== '0000', c.ssn);
    }
    assert.equal(new Set(customers.map((c) => c.email)).size, customers.length);
    assert.ok(payments.every((p) => p.customerId >= 1 && p.customerId <= customers.length));
    // Free text must carry PII for the detectors to find.
    assert.ok(notes.some((n) => /@example\.(com|org|net)/.test(n.note)));
    assert.ok(notes.some((n) => /\d{4} ?\d{4} ?\d{4} ?\d{4}/.test(n.note)));
    assert.deepEqual(demoRows().payments[1999], payments[1999]);
  });
});
