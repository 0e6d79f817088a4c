type Typed = Uint8Array | Uint32Array | Int32Array | Float32Array;

/** The parts end to end in one new array of their type. */
export function concatArrays<T extends Typed>(Ctor: new (length: number) => T, parts: readonly T[]): T {
  const out = new Ctor(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
