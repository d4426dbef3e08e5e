/**
 * Builds one VSIX per platform with `vsce package --target`, then checks each (check-vsix.ts).
 *
 *   node --import tsx scripts/package-vsix.ts [--target linux-x64 ...] [--no-check]
 *
 * webpack bundles everything except the native modules (onnxruntime-node and sharp), which must
 * ship as node_modules. Each target gets a staging folder (.cache/vsix-staging/<target>) holding
 * the extension's run-time files and a production node_modules with exactly the run-time
 * dependencies, with only that platform's binaries:
 *
 * - onnxruntime-node (its JS and bin/napi-v6/<os>/<arch>) and onnxruntime-common, from this
 *   install; darwin-x64 gets onnxruntime-node 1.23.2 from the registry (see targets.ts).
 * - sharp with its JS dependencies (@img/colour, detect-libc, semver), and @img/sharp-<platform>
 *   plus @img/sharp-libvips-<platform> at the versions sharp pins. npm installs only the host's
 *   platform packages, so the others are fetched with `npm pack` (cached in .cache/vsix-packages).
 *
 * onnxruntime-node's own dependencies (adm-zip, global-agent) only serve its postinstall download
 * and are left out; the staged copy of its package.json says so, so vsce's `npm list` agrees.
 * Builds dist/ first when it is missing or older than the sources. After packing, every VSIX is
 * checked (check-vsix.ts), and a pinned onnxruntime-node must classify the fixtures as the
 * installed one does.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { checkVsix, formatMiB } from './check-vsix';
import { extensionBundles, extensionMedia, linkedOnnxruntimeLibrary, PACKAGES_CACHE, ROOT, STAGING_DIR, Target, TARGETS, targetByName, usearchPrebuild, VSIX_DIR, vsixFileName } from './vsix/targets';

interface PackageJson {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [key: string]: unknown;
}

const readJson = (file: string): PackageJson => JSON.parse(readFileSync(file, 'utf8')) as PackageJson;
const rootModules = path.join(ROOT, 'node_modules');

/** The extension's files at run time (node_modules aside); .vscodeignore has the last word. */
const EXTENSION_FILES = ['README.md', 'LICENSE', 'CHANGELOG.md', '.vscodeignore', ...extensionBundles(), ...extensionMedia()];
const DIST_SOURCES = ['src', 'webpack.config.js', 'tsconfig.json'];
/** Pure-JS run-time packages copied from this install as they are. */
const JS_PACKAGES = ['sharp', '@img/colour', 'detect-libc', 'semver'];

function log(message: string): void {
  console.log(`[package] ${message}`);
}

function newestMtime(entry: string): number {
  const info = statSync(entry);
  if (!info.isDirectory()) return info.mtimeMs;
  return readdirSync(entry).reduce((newest, name) => Math.max(newest, newestMtime(path.join(entry, name))), info.mtimeMs);
}

/** Runs `npm run build` unless every bundle is newer than every source. */
function ensureBuilt(): void {
  const bundles = extensionBundles().map((f) => path.join(ROOT, f));
  const built = bundles.every((f) => existsSync(f)) ? Math.min(...bundles.map((f) => statSync(f).mtimeMs)) : 0;
  const sources = Math.max(...DIST_SOURCES.map((s) => newestMtime(path.join(ROOT, s))));
  if (built > sources) return;
  log('dist/ is missing or older than the sources: npm run build');
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
}

/** A package from the npm registry, unpacked once into .cache/vsix-packages/<name>@<version>. */
function fetchPackage(name: string, version: string): string {
  const dir = path.join(PACKAGES_CACHE, `${name.replace('/', '+')}@${version}`);
  if (existsSync(path.join(dir, 'package.json'))) return dir;
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  log(`npm pack ${name}@${version}`);
  const out = execFileSync('npm', ['pack', `${name}@${version}`, '--json', '--pack-destination', tmp], { cwd: tmp, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const [{ filename }] = JSON.parse(out) as { filename: string }[];
  execFileSync('tar', ['-xzf', path.join(tmp, filename), '-C', tmp, '--no-same-owner']);
  rmSync(path.join(tmp, filename));
  const unpacked = path.join(tmp, 'package');
  const actual = readJson(path.join(unpacked, 'package.json'));
  if (actual.name !== name || actual.version !== version) throw new Error(`npm pack ${name}@${version} gave ${actual.name}@${actual.version}`);
  rmSync(dir, { recursive: true, force: true });
  cpSync(unpacked, dir, { recursive: true });
  rmSync(tmp, { recursive: true, force: true });
  return dir;
}

/** This install's copy if it is the wanted version, else the registry's. */
function packageDir(name: string, version: string): string {
  const local = path.join(rootModules, name);
  if (existsSync(path.join(local, 'package.json')) && readJson(path.join(local, 'package.json')).version === version) return local;
  return fetchPackage(name, version);
}

function copyPackage(from: string, stagingModules: string, name: string, filter?: (relative: string) => boolean): void {
  const to = path.join(stagingModules, name);
  cpSync(from, to, {
    recursive: true,
    dereference: true,
    filter: (src) => {
      const relative = path.relative(from, src).split(path.sep).join('/');
      if (relative === 'node_modules' || relative.startsWith('node_modules/')) return false;
      return filter ? filter(relative) : true;
    },
  });
}

function stageNodeModules(target: Target, stagingModules: string): Record<string, string> {
  const installedOrt = readJson(path.join(rootModules, 'onnxruntime-node', 'package.json')).version;
  const ortVersion = target.onnxruntimeVersion ?? installedOrt;
  const ortDir = packageDir('onnxruntime-node', ortVersion);
  const ortBin = `bin/napi-v6/${target.os}/${target.arch}`;
  if (!existsSync(path.join(ortDir, ortBin, 'onnxruntime_binding.node'))) throw new Error(`onnxruntime-node ${ortVersion} has no ${ortBin}/onnxruntime_binding.node`);
  const linkedLibrary = linkedOnnxruntimeLibrary(readFileSync(path.join(ortDir, ortBin, 'onnxruntime_binding.node')));
  if (!linkedLibrary || !existsSync(path.join(ortDir, ortBin, linkedLibrary))) throw new Error(`onnxruntime-node ${ortVersion}: ${ortBin}/onnxruntime_binding.node links ${linkedLibrary ?? 'no onnxruntime library'} that the package lacks`);
  copyPackage(ortDir, stagingModules, 'onnxruntime-node', (rel) => {
    if (rel === 'bin' || rel === 'bin/napi-v6' || rel === `bin/napi-v6/${target.os}` || rel === ortBin) return true;
    // macOS builds carry the library twice (libonnxruntime.1.dylib and libonnxruntime.1.30.0.dylib,
    // identical): ship only the one the binding links.
    if (rel.startsWith(`${ortBin}/`)) return !/\.dylib$/.test(rel) || path.basename(rel) === linkedLibrary;
    return !rel.startsWith('bin/') && !rel.startsWith('script') && !rel.startsWith('lib');
  });
  // Its dependencies (adm-zip, global-agent) are for the postinstall download, which never runs here.
  const ortManifest = path.join(stagingModules, 'onnxruntime-node', 'package.json');
  const ortPackage = readJson(ortManifest);
  const commonVersion = ortPackage.dependencies?.['onnxruntime-common'];
  if (!commonVersion) throw new Error(`onnxruntime-node ${ortVersion} does not name its onnxruntime-common`);
  ortPackage.dependencies = { 'onnxruntime-common': commonVersion };
  delete ortPackage.scripts;
  writeFileSync(ortManifest, `${JSON.stringify(ortPackage, null, 2)}\n`);
  copyPackage(packageDir('onnxruntime-common', commonVersion), stagingModules, 'onnxruntime-common', (rel) => !rel.startsWith('lib'));

  for (const name of JS_PACKAGES) copyPackage(path.join(rootModules, name), stagingModules, name);
  const sharp = readJson(path.join(rootModules, 'sharp', 'package.json'));
  const optional = sharp.optionalDependencies ?? {};
  const platformPackages = [`@img/sharp-${target.sharpPlatform}`, ...(target.separateLibvips ? [`@img/sharp-libvips-${target.sharpPlatform}`] : [])];
  for (const name of platformPackages) {
    const version = optional[name];
    if (!version) throw new Error(`sharp ${sharp.version} has no optional dependency ${name}`);
    copyPackage(packageDir(name, version), stagingModules, name);
  }
  const usearch = stageUsearch(target, stagingModules);
  return { 'onnxruntime-node': ortVersion, sharp: sharp.version, ...(usearch ? { usearch } : {}) };
}

/**
 * usearch, the approximate similarity index: its CommonJS build, this target's prebuild (its npm package ships
 * linux-x64, linux-arm64 and one macOS file for both architectures; none for Windows, where search stays exact)
 * and its run-time loaders. node-addon-api is build-time only; the staged package.json says so, so vsce's
 * `npm list` agrees. Returns the version staged, or undefined where there is no prebuild.
 */
function stageUsearch(target: Target, stagingModules: string): string | undefined {
  const dir = path.join(rootModules, 'usearch');
  const prebuild = usearchPrebuild(target, readdirSync(path.join(dir, 'prebuilds')));
  if (!prebuild) {
    log(`${target.name}: usearch has no prebuild for this platform; similarity search stays exact in this VSIX`);
    return undefined;
  }
  const keep = (rel: string) =>
    rel === '' || rel === 'package.json' || rel === 'LICENSE' || rel === 'javascript' || rel === 'javascript/dist' || rel === 'javascript/dist/cjs' || /^javascript\/dist\/cjs\/[^/]+\.(js|json)$/.test(rel) || rel === 'prebuilds' || rel === `prebuilds/${prebuild}` || rel === `prebuilds/${prebuild}/usearch.node`;
  copyPackage(dir, stagingModules, 'usearch', keep);
  const manifestFile = path.join(stagingModules, 'usearch', 'package.json');
  const manifest = readJson(manifestFile) as PackageJson;
  const runtime = ['bindings', 'node-gyp-build'];
  manifest.dependencies = Object.fromEntries(runtime.map((name) => [name, manifest.dependencies?.[name] ?? '*']));
  writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  for (const name of [...runtime, 'file-uri-to-path']) copyPackage(path.join(rootModules, name), stagingModules, name, (rel) => rel === '' || /^[^/]+\.(js|json|md)$/.test(rel) || rel === 'LICENSE');
  return manifest.version as string;
}

function stage(target: Target, manifest: PackageJson): string {
  const dir = path.join(STAGING_DIR, target.name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const file of EXTENSION_FILES) {
    const from = path.join(ROOT, file);
    if (!existsSync(from)) {
      if (file === 'CHANGELOG.md') continue;
      throw new Error(`${file} is missing`);
    }
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    cpSync(from, path.join(dir, file));
  }
  // README images (media/screenshots) are linked, not shipped: vsce points them at the repository.
  const dependencies = stageNodeModules(target, path.join(dir, 'node_modules'));
  const staged: PackageJson = { ...manifest, dependencies };
  for (const key of ['scripts', 'devDependencies', 'bin', 'private', 'files']) delete staged[key];
  writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(staged, null, 2)}\n`);
  return dir;
}

/**
 * A target that ships another onnxruntime-node than the one everything else is tested with
 * (darwin-x64) must run our code the same. Classifies the fixture images with the CLI bundle on that
 * version (its binaries for this machine) and on the installed one, and compares.
 */
function checkPinnedRuntime(version: string): boolean {
  const hostBin = `bin/napi-v6/${process.platform}/${process.arch}`;
  const ortDir = packageDir('onnxruntime-node', version);
  if (!existsSync(path.join(ortDir, hostBin, 'onnxruntime_binding.node'))) {
    log(`onnxruntime-node ${version} has no ${hostBin}: cannot check it on this machine`);
    return true;
  }
  const dir = path.join(STAGING_DIR, `runtime-check-${version}`);
  rmSync(dir, { recursive: true, force: true });
  const modules = path.join(dir, 'node_modules');
  copyPackage(ortDir, modules, 'onnxruntime-node', (rel) => !rel.startsWith('bin/') || hostBin.startsWith(rel) || rel.startsWith(`${hostBin}/`));
  const commonVersion = readJson(path.join(ortDir, 'package.json')).dependencies?.['onnxruntime-common'] ?? version;
  copyPackage(packageDir('onnxruntime-common', commonVersion), modules, 'onnxruntime-common');
  const hostImg = readdirSync(path.join(rootModules, '@img')).map((name) => `@img/${name}`);
  for (const name of [...JS_PACKAGES, ...hostImg]) copyPackage(path.join(rootModules, name), modules, name);
  mkdirSync(path.join(dir, 'dist'), { recursive: true });
  for (const bundle of ['cli.js', 'scanWorker.js']) cpSync(path.join(ROOT, 'dist', bundle), path.join(dir, 'dist', bundle));

  const fixture = path.join(ROOT, 'test', 'fixtures', 'beit-tiny');
  const model = path.join(dir, 'model');
  const cli = (bundle: string, args: string[]) => execFileSync(process.execPath, [bundle, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  cli(path.join(ROOT, 'dist', 'cli.js'), ['convert', '--from', fixture, '--out', model]);
  const images = readdirSync(path.join(fixture, 'images')).map((f) => path.join(fixture, 'images', f));
  const classify = (bundle: string) => cli(bundle, ['classify', '--json', '--top-k', '5', '--model', model, ...images]).trim().split('\n').map((l) => JSON.parse(l) as { image: string; top?: { label: string; score: number }[] });
  const pinned = classify(path.join(dir, 'dist', 'cli.js'));
  const installed = classify(path.join(ROOT, 'dist', 'cli.js'));
  const doctor = cli(path.join(dir, 'dist', 'cli.js'), ['doctor', '--model', model]);
  const problems: string[] = [];
  if (!doctor.includes(`onnxruntime-node: ${version}`)) problems.push(`the check did not run on onnxruntime-node ${version}:\n${doctor}`);
  installed.forEach((want, i) => {
    const got = pinned[i];
    const same = got?.top && want.top && got.top.length === want.top.length && got.top.every((p, k) => p.label === want.top![k].label && Math.abs(p.score - want.top![k].score) < 1e-5);
    if (!same) problems.push(`${path.basename(want.image)}: ${JSON.stringify(got?.top)} vs ${JSON.stringify(want.top)}`);
  });
  rmSync(dir, { recursive: true, force: true });
  if (problems.length === 0) {
    log(`onnxruntime-node ${version} classifies the ${images.length} fixture images as the installed version does`);
    return true;
  }
  console.error(`[package] onnxruntime-node ${version} differs from the installed version:\n  ${problems.join('\n  ')}`);
  return false;
}

function vsce(args: string[], cwd: string): void {
  const bin = path.join(rootModules, '@vscode', 'vsce', 'vsce');
  const result = spawnSync(process.execPath, [bin, ...args], { cwd, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`vsce ${args.join(' ')} failed (exit ${result.status ?? result.signal})`);
}

function parseArgs(argv: string[]): { targets: Target[]; check: boolean } {
  const targets: Target[] = [];
  let check = true;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--target') targets.push(targetByName(argv[++i] ?? ''));
    else if (argv[i] === '--no-check') check = false;
    else throw new Error(`unknown argument ${argv[i]}; usage: package-vsix.ts [--target T ...] [--no-check]`);
  }
  return { targets: targets.length ? targets : [...TARGETS], check };
}

function main(): void {
  const { targets, check } = parseArgs(process.argv.slice(2));
  ensureBuilt();
  const manifest = readJson(path.join(ROOT, 'package.json'));
  mkdirSync(VSIX_DIR, { recursive: true });
  const built: { target: Target; file: string }[] = [];
  for (const target of targets) {
    const started = Date.now();
    const dir = stage(target, manifest);
    const file = path.join(VSIX_DIR, vsixFileName(manifest.name, target, manifest.version));
    rmSync(file, { force: true });
    vsce(['package', '--target', target.name, '--out', file], dir);
    log(`${path.relative(ROOT, file)}: ${formatMiB(statSync(file).size)} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    built.push({ target, file });
  }
  if (!check) return;
  let failed = false;
  for (const { target, file } of built) failed = !checkVsix(file, target) || failed;
  for (const version of new Set(targets.map((t) => t.onnxruntimeVersion).filter((v): v is string => !!v))) failed = !checkPinnedRuntime(version) || failed;
  if (failed) {
    console.error('[package] the package check failed');
    process.exit(1);
  }
}

main();
