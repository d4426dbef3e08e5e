/**
 * The Pillow resampler port. The fixture images (preprocess.test.ts) pin BILINEAR at 224x224; the hashes below
 * pin every filter at other sizes (up, down, one axis only: 80x23 and 37x40) against Pillow 9.4.0's `Image.resize`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';

import fc from 'fast-check';

import { PilResample, isSupportedPilResample, resizeBilinearPil, resizePil } from '../../src/core/pilResize';

const W = 37;
const H = 23;

/** Smooth ramps plus a hard checkerboard, so both interpolation and clipping of overshoot are exercised. */
function pattern(channels: number): Uint8Array {
  const out = new Uint8Array(W * H * channels);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < channels; c++) {
        const checker = (Math.floor(x / 5) + Math.floor(y / 4)) % 2 ? 255 : 0;
        out[(y * W + x) * channels + c] = (x * 7 + y * 13 + c * 50 + ((x * y) % 17) * 9 + checker) & 255;
      }
    }
  }
  return out;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * sha256 of `Image.frombytes('RGB', (37, 23), pattern).resize((w, h), resample=f).tobytes()`, Pillow 9.4.0.
 * Columns: filter, width, height, hash.
 */
const PILLOW_RGB: [number, number, number, string][] = [
  [1, 224, 224, '6eab66f80a1a0c3f7453b9459ada0d1a21e51be3a633647a9cad83125ed0a56c'],
  [1, 11, 5, 'a7a95064a0dfb728623973002cd8c0a169202ef7eae703930f41e11e2be63caa'],
  [1, 37, 40, '74290f16878c032fbd40932f0f5f37ec66039d2d8c5a392ec899a5d5ec805994'],
  [1, 80, 23, 'd727d375f3d76106360d4eea72a922883e94fc31531c69f004106989feb27c04'],
  [1, 5, 60, 'f6952921b53add1963d08fad81df9c9669bde7d657eb4e7d8d7bb932ce94a0b6'],
  [1, 1, 1, 'bb9856d4320b6e5761b8216d19e6a1b770c31f8f3ffe1c3493efbb6e6a219805'],
  [2, 224, 224, '302eb1f713dbd3bbfb601c1ad032a7ee817c650874ff235d26a720ba392e8a15'],
  [2, 11, 5, 'dd5f0bfcbca32376d81be141d1d919c677188383afe82ede0649e98204579299'],
  [2, 37, 40, 'c8d1121ae50c47e92ddd65edba6ef520245998e73e7c8b2f7c624c99bcd520d7'],
  [2, 80, 23, 'fbc42614e72f0c1e764742a0a0e8d2bdde47ee56bfb5fe2fdf9cb9e5efed6588'],
  [2, 5, 60, '418c64e9b5f341cd264a4fce094021a8647e3df297d6ed4634c8756c16c36004'],
  [2, 1, 1, 'bb9856d4320b6e5761b8216d19e6a1b770c31f8f3ffe1c3493efbb6e6a219805'],
  [3, 224, 224, '2144190d61e384162a82b1eb9ba13346f08ddc7fddeb9e6baeb2025430e79546'],
  [3, 11, 5, '00fbd3d7b1dde283185670b052f32bb92fba55ebcbf27a81aa8f3d4005232cbe'],
  [3, 37, 40, '5fce687492fa71fdb9d97123f00e5256673dfb3f16263d51edfb8878a091d9b9'],
  [3, 80, 23, 'e4cbdc69c67c4ebe2a971e51af43ad00974b4a3d024ac8decf2c3dfcb2b02b98'],
  [3, 5, 60, '989bf44fb903e3ef1806f4cadefe8a99698f829c2ccf4b32395f8b108cf765b5'],
  [3, 1, 1, 'bb9856d4320b6e5761b8216d19e6a1b770c31f8f3ffe1c3493efbb6e6a219805'],
  [4, 224, 224, 'ad1ac7fd7950dd2fb8fd3cbca85893872ec197a1b481c6da85ad33458ddd4276'],
  [4, 11, 5, 'ccced5baba44a47281cb615ec69e24ced14621d659c421e2814dcf436ef94640'],
  [4, 37, 40, 'b946fdebb22982c86a72929315060e295936c9843aeb5391927755684e9ac91f'],
  [4, 80, 23, '629c90cc3aba9726c63532b3af3ae28f004bf287d46c57a9c0d83e2e3e28e3b3'],
  [4, 5, 60, '5abc1e96a5ed61b2325fa63f1fc4d9d570eee942e9ce231c7a5e97f45f73aec8'],
  [4, 1, 1, '00ec755019482152fa2225e6e3cfe7207102fdbc2b4d2e614760c0a4c3b417ee'],
  [5, 224, 224, '9dac227b2fe20c849662057189a3d98aa1d8eb60c2e61104b2ad402c7bf2064c'],
  [5, 11, 5, 'cb550b6489a77ea66a3d433c1977e6fd5a52e69d6a82eea4392fedadcafef775'],
  [5, 37, 40, '7b1319e9d5fbb114e730d908b4bf13507401be5dc6428ee737f17d2f2e7b7816'],
  [5, 80, 23, '45a2531de59781035f40c9d48c683a05c47d9e51f2c46ee16cf8a43e2984c099'],
  [5, 5, 60, 'bfac61e0e3681e1366b515e04d22913cfe21295d654a12243bfb8c16cc3d0413'],
  [5, 1, 1, '7f181032cfc623754f42ac2b2c06eaddaae8f2983273d5a3e2479cfdc9b24e9a'],
];

describe('resizePil matches Pillow 9.4.0 bit for bit', () => {
  const rgb = pattern(3);
  for (const [filter, w, h, hash] of PILLOW_RGB) {
    test(`RGB filter ${filter} to ${w}x${h}`, () => {
      assert.equal(sha256(resizePil(rgb, W, H, 3, w, h, filter)), hash);
    });
  }

  test('single channel (mode L, the red plane of the pattern), BILINEAR to 19x31', () => {
    const grey = pattern(3).filter((_, i) => i % 3 === 0);
    assert.equal(
      sha256(resizeBilinearPil(grey, W, H, 1, 19, 31)),
      'e4710a116011d2982515b33d024340e5f2a3294855e39a693c17962918045dfc',
    );
  });
});

describe('resizePil properties', () => {
  const filters = [PilResample.LANCZOS, PilResample.BILINEAR, PilResample.BICUBIC, PilResample.BOX, PilResample.HAMMING];
  const dims = fc.record({
    srcW: fc.integer({ min: 1, max: 40 }),
    srcH: fc.integer({ min: 1, max: 40 }),
    dstW: fc.integer({ min: 1, max: 60 }),
    dstH: fc.integer({ min: 1, max: 60 }),
    filter: fc.constantFrom(...filters),
  });

  test('channels are resampled independently (RGB equals three single-channel resizes)', () => {
    fc.assert(
      fc.property(dims, fc.integer({ min: 0, max: 2 ** 31 - 1 }), ({ srcW, srcH, dstW, dstH, filter }, seed) => {
        let s = seed;
        const rgb = Uint8Array.from({ length: srcW * srcH * 3 }, () => (s = (s * 1103515245 + 12345) >>> 0) >>> 24);
        const together = resizePil(rgb, srcW, srcH, 3, dstW, dstH, filter);
        for (let c = 0; c < 3; c++) {
          const plane = rgb.filter((_, i) => i % 3 === c);
          const alone = resizePil(plane, srcW, srcH, 1, dstW, dstH, filter);
          assert.deepEqual(together.filter((_, i) => i % 3 === c), alone);
        }
      }),
      { numRuns: 150 },
    );
  });

  test('a constant image stays exactly constant, whatever the filter', () => {
    fc.assert(
      fc.property(dims, fc.integer({ min: 0, max: 255 }), ({ srcW, srcH, dstW, dstH, filter }, value) => {
        const out = resizePil(new Uint8Array(srcW * srcH * 2).fill(value), srcW, srcH, 2, dstW, dstH, filter);
        assert.ok(out.every((v) => v === value));
      }),
      { numRuns: 150 },
    );
  });

  test('same size returns an equal copy, not the input', () => {
    const src = pattern(3);
    const out = resizeBilinearPil(src, W, H, 3, W, H);
    assert.notEqual(out, src);
    assert.deepEqual(out, src);
  });

  test('rejects NEAREST, bad sizes and mismatched buffers', () => {
    assert.equal(isSupportedPilResample(PilResample.NEAREST), false);
    assert.throws(() => resizePil(new Uint8Array(3), 1, 1, 3, 2, 2, PilResample.NEAREST), RangeError);
    assert.throws(() => resizeBilinearPil(new Uint8Array(3), 1, 1, 3, 0, 2), RangeError);
    assert.throws(() => resizeBilinearPil(new Uint8Array(4), 1, 1, 3, 2, 2), RangeError);
  });
});
