/**
 * Runs the VS Code integration suite (test/vscode/suite) in a real workbench through
 * @vscode/test-electron. It runs only where VSCODE_EXECUTABLE_PATH names a VS Code executable (CI
 * provides one); anywhere else it says why it did not run and exits 0.
 *
 *   npm run build && VSCODE_EXECUTABLE_PATH=/path/to/code node --import tsx test/vscode/run.ts
 *
 * It converts the tiny fixture model, makes a throwaway workspace and user-data folder (the model
 * set in user settings, plus a copy in the extension's download cache so `downloadModel` finds it
 * without a network), transpiles the suite, and launches VS Code with only this extension.
 */
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import ts from 'typescript';
import { convertModel } from '../../src/core/convert';

const root = path.resolve(__dirname, '../..');

/** The part of @vscode/test-electron's documented API we use. */
interface TestElectron {
  runTests(options: {
    vscodeExecutablePath: string;
    extensionDevelopmentPath: string;
    extensionTestsPath: string;
    launchArgs?: string[];
    extensionTestsEnv?: Record<string, string | undefined>;
  }): Promise<number>;
}

function skip(reason: string): never {
  console.log(`VS Code integration tests did not run: ${reason}`);
  process.exit(0);
}

async function loadTestElectron(): Promise<TestElectron> {
  try {
    // Not a dependency of the build: only this runner needs it.
    const name = '@vscode/test-electron';
    return (await import(name)) as TestElectron;
  } catch {
    return skip('@vscode/test-electron is not installed (npm install --save-dev @vscode/test-electron).');
  }
}

/** The suite runs inside VS Code's extension host, which loads plain CommonJS. */
async function transpileSuite(outDir: string): Promise<string> {
  const srcDir = path.join(__dirname, 'suite');
  await mkdir(outDir, { recursive: true });
  for (const name of await readdir(srcDir)) {
    if (!name.endsWith('.ts')) continue;
    const source = await readFile(path.join(srcDir, name), 'utf8');
    const out = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, sourceMap: false }, fileName: name });
    await writeFile(path.join(outDir, name.replace(/\.ts$/, '.js')), out.outputText);
  }
  return path.join(outDir, 'index.js');
}

async function main(): Promise<void> {
  const executable = process.env.VSCODE_EXECUTABLE_PATH;
  if (!executable) skip('VSCODE_EXECUTABLE_PATH is not set (point it at a VS Code executable, e.g. one downloaded by @vscode/test-electron).');
  if (!existsSync(executable)) skip(`VSCODE_EXECUTABLE_PATH=${executable} does not exist.`);
  const { runTests } = await loadTestElectron();
  for (const built of ['dist/extension.js', 'dist/inferenceWorker.js', 'dist/webview.js']) {
    if (!existsSync(path.join(root, built))) {
      console.error(`${built} is missing: run \`npm run build\` first.`);
      process.exit(1);
    }
  }

  const tmp = await mkdtemp(path.join(tmpdir(), 'beit-lens-vscode-'));
  try {
    const modelDir = path.join(tmp, 'model');
    await convertModel({ from: path.join(root, 'test/fixtures/beit-tiny'), out: modelDir });

    const workspace = path.join(tmp, 'workspace');
    await cp(path.join(root, 'test/fixtures/beit-tiny/images'), path.join(workspace, 'images'), { recursive: true });
    await writeFile(path.join(workspace, 'README.md'), '# Fixture\n\n![gray](images/gray_256x256.png)\n\nSee images/tiny_17x9.png too.\n');
    await writeFile(path.join(workspace, 'train.py'), 'from PIL import Image\nimg = Image.open("images/gradient_640x480.jpg")\n');
    await writeFile(path.join(workspace, 'notes.txt'), 'not an image: images/readme.txt\n');

    const userData = path.join(tmp, 'user-data');
    await mkdir(path.join(userData, 'User'), { recursive: true });
    await writeFile(path.join(userData, 'User', 'settings.json'), JSON.stringify({ 'beitLens.modelPath': modelDir, 'security.workspace.trust.enabled': false, 'workbench.startupEditor': 'none' }, null, 2));
    // A converted model already in the download cache, where ensureModel looks before downloading.
    const cached = path.join(userData, 'User', 'globalStorage', 'beit-lens.beit-lens', 'models', 'converted', 'microsoft--beit-base-patch16-224-pt22k-ft22k', 'main-fp32');
    await mkdir(cached, { recursive: true });
    for (const f of await readdir(modelDir)) await copyFile(path.join(modelDir, f), path.join(cached, f));

    const extensionTestsPath = await transpileSuite(path.join(root, 'out', 'vscode-test', 'suite'));
    const code = await runTests({
      vscodeExecutablePath: executable,
      extensionDevelopmentPath: root,
      extensionTestsPath,
      launchArgs: [workspace, '--disable-extensions', '--user-data-dir', userData, '--skip-welcome', '--skip-release-notes', '--disable-workspace-trust'],
      extensionTestsEnv: { BEIT_LENS_TEST_MODEL: modelDir, BEIT_LENS_TEST_WORKSPACE: workspace },
    });
    process.exitCode = code;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
