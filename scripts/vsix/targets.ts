/**
 * The platforms a VSIX is built for, and which native files each must carry. Shared by the
 * packager (scripts/package-vsix.ts) and the package check (scripts/check-vsix.ts).
 */
import { readdirSync } from 'node:fs';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
/** Where `npm run package` writes the VSIXs (gitignored). */
export const VSIX_DIR = path.join(ROOT, 'out', 'vsix');
/** Per-target staging folders and the platform packages fetched from the npm registry (gitignored). */
export const STAGING_DIR = path.join(ROOT, '.cache', 'vsix-staging');
export const PACKAGES_CACHE = path.join(ROOT, '.cache', 'vsix-packages');

/**
 * Largest VSIX accepted, in MiB. The biggest today is win32-x64 (onnxruntime with DirectML and
 * the WebGPU shader compiler); the budget leaves room for growth but catches a second platform's
 * binaries or a stray model file slipping in.
 */
export const SIZE_BUDGET_MIB = 60;

export type Os = 'linux' | 'darwin' | 'win32';
export type Arch = 'x64' | 'arm64';

export interface Target {
  /** vsce's --target name. */
  name: string;
  os: Os;
  arch: Arch;
  /** The sharp platform package suffix (`@img/sharp-<suffix>`, `@img/sharp-libvips-<suffix>`). */
  sharpPlatform: string;
  /** Windows builds of sharp carry libvips inside @img/sharp-win32-*; the others have a separate package. */
  separateLibvips: boolean;
  /**
   * onnxruntime's shared library next to onnxruntime_binding.node. The check also reads the name
   * the binding actually links from the binding itself and requires that file.
   */
  onnxruntimeLibrary: RegExp;
  /**
   * onnxruntime-node version shipped, when not the one in package-lock.json: onnxruntime stopped
   * publishing macOS x64 builds after 1.23, so Intel Macs get 1.23.2 (the last one that has them).
   */
  onnxruntimeVersion?: string;
}

export const TARGETS: readonly Target[] = [
  { name: 'linux-x64', os: 'linux', arch: 'x64', sharpPlatform: 'linux-x64', separateLibvips: true, onnxruntimeLibrary: /^libonnxruntime\.so\.\d+$/ },
  { name: 'linux-arm64', os: 'linux', arch: 'arm64', sharpPlatform: 'linux-arm64', separateLibvips: true, onnxruntimeLibrary: /^libonnxruntime\.so\.\d+$/ },
  { name: 'darwin-x64', os: 'darwin', arch: 'x64', sharpPlatform: 'darwin-x64', separateLibvips: true, onnxruntimeLibrary: /^libonnxruntime(\.\d+)+\.dylib$/, onnxruntimeVersion: '1.23.2' },
  { name: 'darwin-arm64', os: 'darwin', arch: 'arm64', sharpPlatform: 'darwin-arm64', separateLibvips: true, onnxruntimeLibrary: /^libonnxruntime(\.\d+)+\.dylib$/ },
  { name: 'win32-x64', os: 'win32', arch: 'x64', sharpPlatform: 'win32-x64', separateLibvips: false, onnxruntimeLibrary: /^onnxruntime\.dll$/ },
  { name: 'win32-arm64', os: 'win32', arch: 'arm64', sharpPlatform: 'win32-arm64', separateLibvips: false, onnxruntimeLibrary: /^onnxruntime\.dll$/ },
];

export function targetByName(name: string): Target {
  const target = TARGETS.find((t) => t.name === name);
  if (!target) throw new Error(`unknown target ${name}; known: ${TARGETS.map((t) => t.name).join(', ')}`);
  return target;
}

/**
 * The webpack bundles the extension loads (every entry but the CLI itself: the scan engine's
 * worker-thread script is built with the CLI and used by both), as `dist/<name>.js`. Read from
 * webpack.config.js, so a new bundle cannot be left out of the VSIX unnoticed (.vscodeignore lists
 * them one by one).
 */
export function extensionBundles(): string[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const configs = require(path.join(ROOT, 'webpack.config.js')) as { name?: string; entry?: Record<string, unknown> }[];
  return configs.flatMap((c) => Object.keys(c.entry ?? {}).filter((name) => name !== 'cli').map((name) => `dist/${name}.js`));
}

/** Stylesheets and the icon the webviews and the manifest use. */
export function extensionMedia(): string[] {
  return ['media/icon.png', ...readdirSync(path.join(ROOT, 'media')).filter((f) => f.endsWith('.css')).map((f) => `media/${f}`)];
}

export function vsixFileName(packageName: string, target: Target, version: string): string {
  return `${packageName}-${target.name}-${version}.vsix`;
}

/** The onnxruntime library an onnxruntime_binding.node loads, read from the binary's import table strings. */
export function linkedOnnxruntimeLibrary(binding: Uint8Array): string | undefined {
  const text = Buffer.from(binding).toString('latin1');
  return /(?:@rpath\/)?(libonnxruntime[\w.]*?\.dylib|libonnxruntime\.so\.\d+|onnxruntime\.dll)\b/.exec(text)?.[1];
}

/** Paths inside the VSIX (zip entries start with `extension/`) that the target cannot run without. */
export function requiredEntries(target: Target): string[] {
  const ort = `extension/node_modules/onnxruntime-node/bin/napi-v6/${target.os}/${target.arch}`;
  const required = [
    'extension/package.json',
    ...extensionBundles().map((f) => `extension/${f}`),
    ...extensionMedia().map((f) => `extension/${f}`),
    'extension/node_modules/onnxruntime-node/package.json',
    'extension/node_modules/onnxruntime-node/dist/index.js',
    'extension/node_modules/onnxruntime-common/package.json',
    'extension/node_modules/sharp/package.json',
    'extension/node_modules/detect-libc/package.json',
    'extension/node_modules/semver/package.json',
    'extension/node_modules/@img/colour/package.json',
    `${ort}/onnxruntime_binding.node`,
    `extension/node_modules/@img/sharp-${target.sharpPlatform}/package.json`,
  ];
  if (target.separateLibvips) required.push(`extension/node_modules/@img/sharp-libvips-${target.sharpPlatform}/package.json`);
  return required;
}

/** Required entries matched by pattern (file names carry versions). */
export function requiredPatterns(target: Target): { what: string; pattern: RegExp }[] {
  const img = (pkg: string) => `extension/node_modules/@img/${pkg}/lib/`;
  const ort = escape(`extension/node_modules/onnxruntime-node/bin/napi-v6/${target.os}/${target.arch}/`);
  const patterns = [{ what: `the onnxruntime library for ${target.name}`, pattern: new RegExp(`^${ort}${target.onnxruntimeLibrary.source.replace(/^\^/, '')}`) }];
  patterns.push({ what: `sharp's native module for ${target.sharpPlatform}`, pattern: new RegExp(`^${escape(img(`sharp-${target.sharpPlatform}`))}sharp-${escape(target.sharpPlatform)}[^/]*\\.node$`) });
  const libvips = target.os === 'linux' ? /libvips-cpp\.so\.[\d.]+$/ : target.os === 'darwin' ? /libvips-cpp\.[\d.]+\.dylib$/ : /libvips-42\.dll$/;
  const libvipsPackage = target.separateLibvips ? `sharp-libvips-${target.sharpPlatform}` : `sharp-${target.sharpPlatform}`;
  patterns.push({ what: `libvips for ${target.sharpPlatform}`, pattern: new RegExp(`^${escape(img(libvipsPackage))}${libvips.source}`) });
  return patterns;
}

/**
 * The folder of usearch's prebuilds/ that serves a target (node-gyp-build's naming: `<os>-<arch>[+<arch>...]`),
 * or undefined when the package has none for it.
 */
export function usearchPrebuild(target: Target, folders: readonly string[]): string | undefined {
  return folders.find((folder) => {
    const [os, archs] = folder.split('-', 2);
    return os === target.os && (archs ?? '').split('+').includes(target.arch);
  });
}

/** Why an entry must not be in this target's VSIX, or undefined if it may be. */
export function forbiddenReason(entry: string, target: Target): string | undefined {
  const ortBin = /^extension\/node_modules\/onnxruntime-node\/bin\/napi-v6\/([^/]+)\/([^/]+)\//.exec(entry);
  if (ortBin && (ortBin[1] !== target.os || ortBin[2] !== target.arch)) return `onnxruntime binaries of another platform (${ortBin[1]}-${ortBin[2]})`;
  const img = /^extension\/node_modules\/@img\/sharp-(?:libvips-)?([^/]+)\//.exec(entry);
  if (img && img[1] !== target.sharpPlatform) return `sharp binaries of another platform (${img[1]})`;
  const usearchBin = /^extension\/node_modules\/usearch\/prebuilds\/([^/]+)\//.exec(entry);
  if (usearchBin && usearchPrebuild(target, [usearchBin[1]]) === undefined) return `usearch binaries of another platform (${usearchBin[1]})`;
  if (/\/node_modules\/[^/]+\/node_modules\//.test(entry)) return 'a nested node_modules (an unexpected dependency version)';
  if (/^extension\/(src|test|bench|scripts|scratch|models|out|\.cache|\.ci|\.devbench|\.gl|test-results)\//.test(entry)) return 'not part of the extension at run time';
  if (/^extension\/node_modules\/(adm-zip|global-agent)\//.test(entry)) return "onnxruntime-node's install-time dependency";
  if (/^extension\/node_modules\/sharp\/(src|install)\//.test(entry)) return "sharp's build sources";
  if (/\.(ts|mts|cts|map|tsbuildinfo|gyp|cc|cpp|h)$/.test(entry)) return 'source, typings or source map';
  if (/\.(onnx|weights|safetensors|bin|pt|pth)$/.test(entry) || /fixtures?\//.test(entry)) return 'model weights or test fixtures';
  if (/^extension\/dist\/cli\.js$/.test(entry)) return 'the CLI bundle (not used by the extension)';
  return undefined;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
