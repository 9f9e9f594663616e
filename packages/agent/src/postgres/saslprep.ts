/**
 * SASLprep (RFC 4013, a profile of stringprep RFC 3454) as Postgres applies it to SCRAM
 * passwords (src/common/saslprep.c). Postgres falls back to the raw password when the prepared
 * one would be invalid, and so does this, so both ends always derive the same key.
 *
 * Tables are expressed with Unicode property escapes rather than copied code point lists; the
 * difference is only in code points assigned after Unicode 3.2 (stringprep's version), which
 * Postgres treats as unassigned → prohibited → raw password. We treat them the same way only for
 * the properties JS exposes; the bidirectional rule (RFC 3454 §6) is checked with the scripts
 * that carry RandALCat characters.
 */

// C.1.2 non-ASCII space characters map to SPACE.
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/gu;
// B.1 "commonly mapped to nothing".
// biome-ignore lint/suspicious/noMisleadingCharacterClass: code points from a table, matched one by one
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu;
// C.2 control characters, C.3 private use, C.4 non-characters, C.5 surrogates, C.6–C.9
// (inappropriate for plain text / canonical representation, change display, tagging), A.1
// unassigned.
const PROHIBITED =
  // biome-ignore lint/suspicious/noMisleadingCharacterClass: code points from a table, matched one by one
  /[\p{Cc}\p{Co}\p{Cs}\p{Cn}\u0340\u0341\u200E\u200F\u202A-\u202E\u206A-\u206F\u2FF0-\u2FFB\uFFF9-\uFFFD\u{E0001}\u{E0020}-\u{E007F}\u06DD\u070F\u180E\u2028\u2029\u2061-\u2063\u{1D173}-\u{1D17A}]/u;
const RAND_AL_CAT = /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}]/u;
const LETTER = /\p{L}/u;

/** The password Postgres's SCRAM key derivation uses. */
export function saslprep(password: string): string {
  // Printable ASCII is its own SASLprep; control characters make Postgres use the raw string,
  // which is the same string. Only non-ASCII input needs the full profile.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII range is the point
  if (/^[\x00-\x7f]*$/.test(password)) return password;
  const mapped = password.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC');
  if (mapped === '' || PROHIBITED.test(mapped)) return password;
  if (RAND_AL_CAT.test(mapped)) {
    const chars = [...mapped];
    const first = chars[0] as string;
    const last = chars[chars.length - 1] as string;
    // RFC 3454 §6: RandALCat forbids LCat anywhere and must start and end the string.
    if (
      chars.some((c) => LETTER.test(c) && !RAND_AL_CAT.test(c)) ||
      !RAND_AL_CAT.test(first) ||
      !RAND_AL_CAT.test(last)
    )
      return password;
  }
  return mapped;
}
