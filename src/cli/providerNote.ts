import type { ProviderAttempt, ProviderPreference } from '../core/backend/onnxRuntime';

/**
 * onnxruntime falls back to the CPU when the provider asked for cannot start, which is right for `auto` but
 * silent for an explicit `--provider cuda`: the user waits on a CPU thinking it is the GPU. One line says so and
 * why (the first line of the failure ModelSession recorded); `doctor` prints every attempt in full.
 */
export function providerFallbackLine(preference: ProviderPreference, used: string, attempts: readonly ProviderAttempt[]): string | undefined {
  if (preference === 'auto' || preference === used) return undefined;
  const failed = attempts.find((a) => a.provider === preference && !a.ok);
  const why = failed?.reason ? `: ${failed.reason}` : '';
  return `warning: --provider ${preference} is not available${why}; running on the ${used === 'cpu' ? 'CPU' : used} instead (details: beit-lens doctor --provider ${preference})`;
}
