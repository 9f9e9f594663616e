/**
 * Exponential backoff with full jitter: a random delay in [0, min(max, initial·2^attempt)],
 * never below a floor so a fleet of agents does not spin. Full jitter spreads a fleet that
 * lost the gateway at the same instant (AWS Architecture Blog, "Exponential Backoff And Jitter").
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.max(Math.min(50, ceiling), Math.floor(random() * ceiling));
}
