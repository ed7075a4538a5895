/**
 * Whether `x` is made only of what a structured clone copies without changing its meaning
 * to the config schema: primitives (no symbols), arrays, and objects whose prototype is
 * Object.prototype or null. A function, a class instance or a Map is not.
 */
export function isPlainData(x: unknown, seen = new Set<object>()): boolean {
  if (x === null) return true;
  const t = typeof x;
  if (t === 'function' || t === 'symbol') return false;
  if (t !== 'object') return true;
  const o = x as object;
  if (seen.has(o)) return true;
  seen.add(o);
  if (Array.isArray(o)) return o.every((e) => isPlainData(e, seen));
  const proto: unknown = Object.getPrototypeOf(o);
  if (proto !== Object.prototype && proto !== null) return false;
  if (Object.getOwnPropertySymbols(o).length > 0) return false;
  for (const key of Object.keys(o)) {
    const d = Object.getOwnPropertyDescriptor(o, key)!;
    if (d.get || d.set || !isPlainData(d.value, seen)) return false;
  }
  return true;
}
