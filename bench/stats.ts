// Small statistics shared by the benchmark scripts.

/** The P-th percentile of XS (nearest rank, no interpolation); pct(xs, 50) is the median. */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
