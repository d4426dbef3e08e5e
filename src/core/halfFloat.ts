/** IEEE 754 binary16 <-> float32, shared by the safetensors reader and the fp16-compute converter. */

/** IEEE 754 binary16, round to nearest even. */
export function toFloat16(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let i = 0; i < data.length; i++) {
    f32[0] = data[i];
    const x = u32[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
    } else if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let half = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      if (rem > mid || (rem === mid && (half & 1))) half++;
      out[i] = sign | half;
    } else {
      let half = (e << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
      out[i] = sign | half;
    }
  }
  return out;
}

let halfTable: Float32Array | undefined;

/** All 65536 float16 values as float32 (256 kB), built on first use: a lookup beats decoding bits per element. */
export function halfToFloatTable(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let half = 0; half < 65536; half++) {
      const sign = half & 0x8000 ? -1 : 1;
      const exponent = (half >> 10) & 0x1f;
      const mantissa = half & 0x3ff;
      if (exponent === 0) halfTable[half] = sign * mantissa * 2 ** -24;
      else if (exponent === 0x1f) halfTable[half] = mantissa ? NaN : sign * Infinity;
      else halfTable[half] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
    }
  }
  return halfTable;
}

/** float16 bits to float32 values. */
export function fromFloat16(half: Uint16Array): Float32Array {
  const table = halfToFloatTable();
  return Float32Array.from(half, (h) => table[h]);
}

/** float16 bits to float32 values, or undefined when one is infinite or NaN (a vector that cannot be used as one). */
export function finiteFromFloat16(half: Uint16Array): Float32Array | undefined {
  const table = halfToFloatTable();
  const out = new Float32Array(half.length);
  for (let i = 0; i < half.length; i++) {
    const v = table[half[i]];
    if (!Number.isFinite(v)) return undefined;
    out[i] = v;
  }
  return out;
}
