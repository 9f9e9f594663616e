/**
 * Deterministic fake PII for the demo database and for tests elsewhere (masking detectors
 * need card numbers that pass Luhn and IBANs that pass mod-97, not random digit strings).
 * Every value is made up: names come from short lists, emails use the RFC 2606 example
 * domains, US phones use the 555-01xx fictional range, GB phones Ofcom's 020 7946 0xxx
 * drama range.
 *
 * @example
 * const rng = createRng(1);
 * const c = fakeCustomer(rng, 1);
 * const p = fakePayment(rng, 1, c.country);
 * luhnValid(p.cardNumber) && ibanValid(p.iban); // true
 */
import type { Rng } from './rng.js';

export type DemoCountry = 'US' | 'GB' | 'DE' | 'FR' | 'NL';
export type IbanCountry = 'GB' | 'DE' | 'FR' | 'NL';
export type CardBrand = 'visa' | 'mastercard' | 'discover';

export interface FakeCustomer {
  fullName: string;
  email: string;
  phone: string;
  /** YYYY-MM-DD */
  dateOfBirth: string;
  street: string;
  city: string;
  postcode: string;
  country: DemoCountry;
  /** US-style AAA-GG-SSSS, well-formed but made up. */
  ssn: string;
  /** ISO 8601 timestamp. */
  createdAt: string;
}

export interface FakePayment {
  customerId: number;
  amountCents: number;
  currency: 'USD' | 'EUR' | 'GBP';
  cardNumber: string;
  cardBrand: CardBrand;
  iban: string;
  status: 'succeeded' | 'pending' | 'failed' | 'refunded';
  createdAt: string;
}

const FIRST_NAMES = [
  'Alice',
  'Bruno',
  'Chloe',
  'Daniel',
  'Elena',
  'Farid',
  'Greta',
  'Hugo',
  'Ines',
  'Jonas',
  'Keiko',
  'Liam',
  'Maya',
  'Noah',
  'Olga',
  'Pedro',
  'Quinn',
  'Rosa',
  'Samir',
  'Tara',
  'Umar',
  'Vera',
  'Wen',
  'Yusuf',
  'Zoe',
] as const;
const LAST_NAMES = [
  'Anderson',
  'Becker',
  'Costa',
  'Dubois',
  'Evans',
  'Fischer',
  'Garcia',
  'Hughes',
  'Ivanova',
  'Jansen',
  'Klein',
  'Laurent',
  'Moreau',
  'Nakamura',
  'Okafor',
  'Patel',
  'Rossi',
  'Schmidt',
  'Taylor',
  'Visser',
  'Walker',
  'Young',
] as const;

interface CountryData {
  cities: readonly string[];
  streets: readonly string[];
  postcode(rng: Rng): string;
  phone(rng: Rng): string;
}

const LETTERS = 'ABCDEFGHJKLMNPRSTUVWXYZ';
const letters = (rng: Rng, n: number): string => {
  let out = '';
  for (let i = 0; i < n; i++) out += LETTERS[rng.int(0, LETTERS.length - 1)];
  return out;
};

const COUNTRIES: Readonly<Record<DemoCountry, CountryData>> = {
  US: {
    cities: ['New York', 'Austin', 'Seattle', 'Denver', 'Boston'],
    streets: ['Maple Street', 'Oak Avenue', 'Pine Road', 'Cedar Lane', 'Elm Street'],
    postcode: (rng) => rng.digits(5),
    phone: (rng) => `+1-${rng.pick(['202', '312', '415', '512', '617'])}-555-01${rng.digits(2)}`,
  },
  GB: {
    cities: ['London', 'Manchester', 'Leeds', 'Bristol'],
    streets: ['High Street', 'Station Road', 'Church Lane', 'Victoria Road'],
    postcode: (rng) => `${rng.pick(['SW', 'EC', 'M', 'LS', 'BS'])}${rng.int(1, 20)} ${rng.int(1, 9)}${letters(rng, 2)}`,
    phone: (rng) => `+44 20 7946 0${rng.digits(3)}`,
  },
  DE: {
    cities: ['Berlin', 'Hamburg', 'Munich', 'Cologne'],
    streets: ['Hauptstrasse', 'Bahnhofstrasse', 'Gartenweg', 'Lindenallee'],
    postcode: (rng) => rng.digits(5),
    phone: (rng) => `+49 30 ${rng.int(1, 9)}${rng.digits(6)}`,
  },
  FR: {
    cities: ['Paris', 'Lyon', 'Marseille', 'Toulouse'],
    streets: ['Rue de la Paix', 'Avenue Victor Hugo', 'Rue du Moulin', 'Boulevard Voltaire'],
    postcode: (rng) => `${rng.int(10, 95)}${rng.digits(3)}`,
    phone: (rng) => `+33 1 ${rng.digits(2)} ${rng.digits(2)} ${rng.digits(2)} ${rng.digits(2)}`,
  },
  NL: {
    cities: ['Amsterdam', 'Rotterdam', 'Utrecht'],
    streets: ['Kerkstraat', 'Dorpsstraat', 'Molenweg'],
    postcode: (rng) => `${rng.int(1000, 9999)} ${letters(rng, 2)}`,
    phone: (rng) => `+31 20 ${rng.int(1, 9)}${rng.digits(6)}`,
  },
};
const COUNTRY_CODES = Object.keys(COUNTRIES) as DemoCountry[];

/** The demo's timestamps fall in 2024 so they sort and compare the same on every run. */
const EPOCH_2024 = Date.UTC(2024, 0, 1);
export function fakeTimestamp(rng: Rng): string {
  return new Date(EPOCH_2024 + rng.int(0, 365 * 24 * 3600 - 1) * 1000).toISOString();
}

/** US-style SSN avoiding the ranges the SSA never issues (000, 666, 9xx; group 00; serial 0000). */
export function fakeSsn(rng: Rng): string {
  let area = rng.int(1, 898);
  if (area === 666) area = 667;
  const group = rng.int(1, 99);
  const serial = rng.int(1, 9999);
  return `${String(area).padStart(3, '0')}-${String(group).padStart(2, '0')}-${String(serial).padStart(4, '0')}`;
}

/**
 * A customer row. `id` only makes the email unique; pass the row id the database will use.
 */
export function fakeCustomer(rng: Rng, id = 0): FakeCustomer {
  const first = rng.pick(FIRST_NAMES);
  const last = rng.pick(LAST_NAMES);
  const country = rng.pick(COUNTRY_CODES);
  const data = COUNTRIES[country];
  const year = rng.int(1950, 2004);
  const month = rng.int(1, 12);
  const day = rng.int(1, 28);
  return {
    fullName: `${first} ${last}`,
    email:
      `${first}.${last}${id > 0 ? id : ''}@${rng.pick(['example.com', 'example.org', 'example.net'])}`.toLowerCase(),
    phone: data.phone(rng),
    dateOfBirth: `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`,
    street: `${rng.int(1, 250)} ${rng.pick(data.streets)}`,
    city: rng.pick(data.cities),
    postcode: data.postcode(rng),
    country,
    ssn: fakeSsn(rng),
    createdAt: fakeTimestamp(rng),
  };
}

/** True when `digits` (spaces and dashes ignored) passes the Luhn check (ISO/IEC 7812-1 annex B). */
export function luhnValid(number: string): boolean {
  const digits = number.replace(/[\s-]/g, '');
  if (!/^\d{2,19}$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** The digit that makes `partial + digit` pass Luhn. */
export function luhnCheckDigit(partial: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(`${partial}${d}`)) return String(d);
  throw new RangeError(`not a digit string: ${partial}`);
}

/** A 16-digit card number with a real brand prefix and a valid Luhn check digit. */
export function fakeCardNumber(rng: Rng, brand?: CardBrand): { cardNumber: string; cardBrand: CardBrand } {
  const cardBrand = brand ?? rng.pick<CardBrand>(['visa', 'visa', 'mastercard', 'discover']);
  const prefix = cardBrand === 'visa' ? '4' : cardBrand === 'mastercard' ? `5${rng.int(1, 5)}` : '6011';
  const body = prefix + rng.digits(15 - prefix.length);
  return { cardNumber: body + luhnCheckDigit(body), cardBrand };
}

/** Lengths from the SWIFT IBAN registry for the countries the demo emits (and a few more to validate). */
const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AT: 20,
  BE: 16,
  CH: 21,
  DE: 22,
  ES: 24,
  FR: 27,
  GB: 22,
  IE: 22,
  IT: 27,
  LU: 20,
  NL: 18,
  PL: 28,
  PT: 25,
  SE: 24,
};

/** ISO 13616 mod-97 over the rearranged IBAN; letters count as 10..35. Chunked to stay in safe integers. */
function mod97(alnum: string): number {
  let numeric = '';
  for (const ch of alnum) {
    const code = ch.charCodeAt(0);
    numeric += code >= 65 && code <= 90 ? String(code - 55) : ch;
  }
  let rest = 0;
  for (let i = 0; i < numeric.length; i += 7) rest = Number(`${rest}${numeric.slice(i, i + 7)}`) % 97;
  return rest;
}

/** True when `iban` (spaces ignored, case-insensitive) has a known country length and a valid mod-97 checksum. */
export function ibanValid(iban: string): boolean {
  const s = iban.replace(/\s/g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(s)) return false;
  const length = IBAN_LENGTHS[s.slice(0, 2)];
  if (length === undefined || s.length !== length) return false;
  return mod97(s.slice(4) + s.slice(0, 4)) === 1;
}

/** A valid IBAN (electronic format, no spaces) for one of DE, FR, GB, NL. */
export function fakeIban(rng: Rng, country?: IbanCountry): string {
  const cc = country ?? rng.pick<IbanCountry>(['DE', 'FR', 'GB', 'NL']);
  let bban: string;
  switch (cc) {
    case 'DE':
      bban = rng.digits(8) + rng.digits(10);
      break;
    case 'FR': {
      const bank = rng.digits(5);
      const branch = rng.digits(5);
      const account = rng.digits(11);
      // The French RIB key, so the BBAN is valid on its own too.
      const key = 97 - ((89 * Number(bank) + 15 * Number(branch) + 3 * Number(account)) % 97);
      bban = bank + branch + account + String(key).padStart(2, '0');
      break;
    }
    case 'GB':
      bban = rng.pick(['NWBK', 'BARC', 'LOYD', 'HBUK', 'MIDL']) + rng.digits(6) + rng.digits(8);
      break;
    case 'NL':
      bban = rng.pick(['ABNA', 'INGB', 'RABO', 'TRIO']) + rng.digits(10);
      break;
  }
  const check = 98 - mod97(`${bban}${cc}00`);
  return `${cc}${String(check).padStart(2, '0')}${bban}`;
}

const CURRENCY: Readonly<Record<DemoCountry, FakePayment['currency']>> = {
  US: 'USD',
  GB: 'GBP',
  DE: 'EUR',
  FR: 'EUR',
  NL: 'EUR',
};

/** A payment row for `customerId`; currency and IBAN country follow the customer's country. */
export function fakePayment(rng: Rng, customerId: number, country: DemoCountry): FakePayment {
  const { cardNumber, cardBrand } = fakeCardNumber(rng);
  return {
    customerId,
    amountCents: rng.int(199, 250_000),
    currency: CURRENCY[country],
    cardNumber,
    cardBrand,
    iban: fakeIban(rng, country === 'US' ? 'DE' : country),
    status: rng.pick<FakePayment['status']>(['succeeded', 'succeeded', 'succeeded', 'pending', 'failed', 'refunded']),
    createdAt: fakeTimestamp(rng),
  };
}

/** Free text a support agent might write: the PII sits inside prose, where only detectors find it. */
export function fakeNote(rng: Rng, customer: FakeCustomer, payment: FakePayment): string {
  const templates = [
    () => `Customer called from ${customer.phone} asking to change their email to ${customer.email}.`,
    () => `Card ${payment.cardNumber} was declined twice; asked for a call back on ${customer.phone}.`,
    () =>
      `Refund of ${(payment.amountCents / 100).toFixed(2)} ${payment.currency} sent to IBAN ${payment.iban}; receipt emailed to ${customer.email}.`,
    () => `Identity check passed (SSN ${customer.ssn}, born ${customer.dateOfBirth}).`,
    () =>
      `Chargeback opened for card ${payment.cardNumber.replace(/(\d{4})(?=\d)/g, '$1 ')}; contact ${customer.email}.`,
  ];
  return rng.pick(templates)();
}
