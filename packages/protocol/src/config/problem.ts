/**
 * Builds a problem message in the one shape every config error has: what is wrong, then what
 * to write instead. The loader recognises the ` Fix: ` marker and prints such messages as-is.
 *
 * @example
 * problem('"pg" is not a connection type', 'use one of postgres, ssh, http');
 * // '"pg" is not a connection type. Fix: use one of postgres, ssh, http.'
 */
export function problem(what: string, fix: string): string {
  return `${endSentence(what)} Fix: ${endSentence(fix)}`;
}

export const FIX_MARKER = ' Fix: ';

export function endSentence(text: string): string {
  const t = text.trim();
  return /[.?!]$/.test(t) ? t : `${t}.`;
}

/** How a value from the YAML file is shown inside a message. */
export function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'a list';
  return 'a mapping';
}
