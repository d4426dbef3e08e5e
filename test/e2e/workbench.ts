/**
 * A real VS Code workbench for the end-to-end suite: code-server (installed by
 * setup-code-server.sh) on 127.0.0.1 with a fresh user-data and extensions folder, the VSIX
 * installed with --install-extension, and Debian's Chromium driven by playwright-core.
 *
 * The helpers act as a user would — click, right-click, hover, type into the command palette —
 * and read what a user would see from the DOM. Every wait is on something appearing or changing,
 * with generous timeouts (2 cores, a cold workbench).
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext, type Frame, type Locator, type Page } from 'playwright-core';

// Page-side callbacks run in Chromium; the root tsconfig has no DOM lib.
declare const document: any;
declare const window: any;
declare const NodeFilter: any;

const run = promisify(execFile);

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
/** The id VS Code gives the extension's status bar item: `<publisher>.<name>.<item id>`. */
export const STATUS_ITEM_ID = 'beit-lens.beit-lens.beitLens.model';
const VIEWPORT = { width: 1440, height: 900 };

export function codeServerEntry(root: string): string {
  return path.join(process.env.CODE_SERVER_DIR ?? path.join(root, '.cache', 'code-server'), 'node_modules', 'code-server', 'out', 'node', 'entry.js');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A loopback port nothing listens on (it was free a moment ago): a connection to it is refused at once. */
export function closedPort(): Promise<number> {
  return freePort();
}

export interface CodeServerOptions {
  entry: string;
  dir: string;
  vsix: string;
  userSettings: Record<string, unknown>;
}

/** One code-server process with its own user-data and extensions folders. */
export class CodeServer {
  readonly userData: string;
  readonly extensions: string;
  readonly logFile: string;
  url = '';
  private child?: ChildProcess;

  constructor(private readonly options: CodeServerOptions) {
    this.userData = path.join(options.dir, 'user-data');
    this.extensions = path.join(options.dir, 'extensions');
    this.logFile = path.join(options.dir, 'code-server.log');
  }

  private baseArgs(): string[] {
    return [this.options.entry, '--user-data-dir', this.userData, '--extensions-dir', this.extensions, '--config', path.join(this.options.dir, 'code-server.yaml')];
  }

  /** `code-server --install-extension X.vsix`, checked in its output and on disk. */
  async installExtension(): Promise<string> {
    const { stdout, stderr } = await run(process.execPath, [...this.baseArgs(), '--install-extension', this.options.vsix], { timeout: 120_000 });
    const output = `${stdout}${stderr}`;
    if (!/successfully installed/i.test(output)) throw new Error(`installing ${this.options.vsix} failed:\n${output}`);
    const installed = readdirSync(this.extensions).find((d) => d.startsWith('beit-lens.beit-lens-'));
    if (!installed) throw new Error(`no beit-lens.beit-lens-* folder in ${this.extensions} after installing: ${readdirSync(this.extensions).join(', ')}`);
    return path.join(this.extensions, installed);
  }

  async start(): Promise<void> {
    await mkdir(path.join(this.userData, 'User'), { recursive: true });
    await writeFile(path.join(this.userData, 'User', 'settings.json'), JSON.stringify(this.options.userSettings, null, 2));
    await writeFile(path.join(this.options.dir, 'code-server.yaml'), 'auth: none\ncert: false\n');
    const port = await freePort();
    const log = createWriteStream(this.logFile);
    // Its own process group, so stop() ends the server and everything it started (extension hosts, the inference worker).
    const child = spawn(
      process.execPath,
      [...this.baseArgs(), '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', '--disable-update-check', '--disable-getting-started-override', '--ignore-last-opened'],
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } },
    );
    this.child = child;
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    this.url = await new Promise<string>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => reject(new Error(`code-server did not start within 60 s:\n${seen}`)), 60_000);
      const onData = (chunk: Buffer) => {
        seen += chunk.toString();
        const match = /HTTP server listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(seen);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`code-server exited (${code ?? signal}) before listening:\n${seen}`));
      });
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child?.pid || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** The logs to print when a test fails: code-server's own, the newest extension host's, and the extension's channel. */
  logs(): { name: string; text: string }[] {
    const out: { name: string; text: string }[] = [];
    const tail = (file: string, lines = 150) => readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
    if (existsSync(this.logFile)) out.push({ name: this.logFile, text: tail(this.logFile) });
    const logsDir = path.join(this.userData, 'logs');
    const files = existsSync(logsDir) ? walk(logsDir) : [];
    const newest = (pattern: RegExp) =>
      files
        .filter((f) => pattern.test(f))
        .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
        .slice(0, 1);
    for (const file of [...newest(/exthost\d+[\\/]remoteexthost\.log$/), ...newest(/BEiT Lens\.log$/), ...newest(/remoteagent\.log$/)]) out.push({ name: file, text: tail(file) });
    return out;
  }
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

export interface QuickPickRow {
  label: string;
  description: string;
  detail: string;
}

/** One browser tab on the workbench of one folder. */
export class Workbench {
  readonly console: string[] = [];

  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
    private readonly screenshotDir: string,
  ) {
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') this.console.push(`${m.type()}: ${m.text().slice(0, 500)}`);
    });
    page.on('pageerror', (e) => this.console.push(`pageerror: ${e.message}`));
  }

  /** A fresh browser context (so no trust decision or UI state carries over) on `folder`; answers the trust prompt. */
  static async open(browser: Browser, url: string, folder: string, options: { trust: boolean; screenshotDir: string }): Promise<Workbench> {
    const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
    const page = await context.newPage();
    page.setDefaultTimeout(45_000);
    const workbench = new Workbench(context, page, options.screenshotDir);
    await page.goto(`${url}/?folder=${encodeURIComponent(folder)}`);
    await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
    const dialog = page.locator('.monaco-dialog-box');
    const answer = options.trust ? 'Yes, I trust the authors' : "No, I don't trust the authors";
    await dialog.getByRole('button', { name: answer }).click({ timeout: 90_000 });
    await dialog.waitFor({ state: 'detached' });
    await page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 60_000 });
    return workbench;
  }

  async close(): Promise<void> {
    await this.context.close();
  }

  async screenshot(name: string): Promise<string> {
    const file = path.join(this.screenshotDir, `${name}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }

  // ---- status bar ---------------------------------------------------------------------------

  statusItem(): Locator {
    return this.page.locator(`[id="${STATUS_ITEM_ID}"]`);
  }

  restrictedModeItem(): Locator {
    return this.page.locator('[id="status.workspaceTrust"]');
  }

  /** Waits until the extension's item's text matches `text` and its tooltip (its aria-label) mentions `tooltip`. */
  async waitForStatus(text: RegExp, tooltip?: string, timeout = 90_000): Promise<{ text: string; ariaLabel: string }> {
    await this.page.waitForFunction(
      ([id, pattern, flags, tip]) => {
        const el = document.getElementById(id);
        return !!el && new RegExp(pattern, flags).test(el.innerText.trim()) && (!tip || (el.getAttribute('aria-label') ?? '').includes(tip));
      },
      [STATUS_ITEM_ID, text.source, text.flags, tooltip ?? ''] as const,
      { timeout, polling: 'raf' },
    );
    const item = this.statusItem();
    return { text: (await item.innerText()).trim(), ariaLabel: (await item.getAttribute('aria-label')) ?? '' };
  }

  // ---- explorer -------------------------------------------------------------------------------

  explorerRow(name: string): Locator {
    return this.page.locator(`.explorer-folders-view .monaco-list-row[aria-label="${name}"]`);
  }

  /** Expands the folders of a workspace-relative path in the explorer; returns the row of its last part. */
  async reveal(relative: string): Promise<Locator> {
    const parts = relative.split('/');
    for (const folder of parts.slice(0, -1)) {
      const row = this.explorerRow(folder);
      if ((await row.getAttribute('aria-expanded')) !== 'true') {
        await row.click();
        await this.page.locator(`.explorer-folders-view .monaco-list-row[aria-label="${folder}"][aria-expanded="true"]`).waitFor();
      }
    }
    const row = this.explorerRow(parts[parts.length - 1]);
    await row.waitFor();
    return row;
  }

  /** Right-click → `item` on an explorer entry, as a user would. */
  async explorerContextMenu(relative: string, item: string): Promise<void> {
    const row = await this.reveal(relative);
    await row.click({ button: 'right' });
    await this.clickMenuItem(item);
  }

  /** Selects several explorer entries (click, then Ctrl+click) and runs `item` from the context menu of the last. */
  async explorerContextMenuOnSelection(relatives: string[], item: string): Promise<void> {
    for (const [i, relative] of relatives.entries()) {
      const row = await this.reveal(relative);
      await row.click({ modifiers: i === 0 ? [] : ['Control'] });
      await this.page.locator(`.explorer-folders-view .monaco-list-row.selected[aria-label="${path.basename(relative)}"]`).waitFor();
    }
    await (await this.reveal(relatives[relatives.length - 1])).click({ button: 'right' });
    await this.clickMenuItem(item);
  }

  /** Closes every editor and group, answering "Don't Save" for untitled documents (the doctor's report). */
  async closeAllEditorGroups(): Promise<void> {
    await this.runCommand('View: Close All Editor Groups');
    const dialog = this.page.locator('.monaco-dialog-box');
    const empty = this.page.locator('.part.editor:not(:has(.tab))');
    for (;;) {
      await dialog.or(empty).first().waitFor();
      if (!(await dialog.isVisible())) return;
      await dialog.getByRole('button', { name: "Don't Save" }).click();
      await dialog.waitFor({ state: 'detached' });
    }
  }

  /** Editor groups in the editor area. */
  async editorGroupCount(): Promise<number> {
    return this.page.locator('.part.editor .editor-group-container').count();
  }

  /** The tab labels of each editor group, left to right. */
  async editorGroupTabs(): Promise<string[][]> {
    return this.page.locator('.part.editor .editor-group-container').evaluateAll((groups: any[]) =>
      groups
        .sort((a, b) => a.getBoundingClientRect().left - b.getBoundingClientRect().left)
        .map((g) => [...g.querySelectorAll('.tab')].map((t: any) => t.getAttribute('aria-label') ?? '')),
    );
  }

  /**
   * Clicks an item of the open context menu; hovers it first, as Monaco's menu ignores clicks while it opens.
   * On a loaded machine a click can still be dropped (the menu stays open, nothing runs), so like a user
   * it clicks again; a click that did land closes the menu before its command runs, so none runs twice.
   */
  async clickMenuItem(item: string): Promise<void> {
    const menu = this.page.locator('.monaco-menu');
    await menu.waitFor();
    const label = this.page.locator('.action-label', { hasText: new RegExp(`^${escapeRegExp(item)}$`) });
    const entry = menu.locator('.action-item', { has: label });
    for (let attempt = 1; ; attempt++) {
      await entry.hover();
      await menu.locator('.action-item.focused', { has: label }).waitFor();
      await entry.click();
      try {
        await menu.waitFor({ state: 'detached', timeout: 5_000 });
        return;
      } catch (err) {
        if (!(await menu.isVisible())) return;
        if (attempt >= 3) throw err;
      }
    }
  }

  /** Opens a file from the explorer in an editor and waits for its text to be shown and focused. */
  async openFile(relative: string, firstText: string): Promise<void> {
    const row = await this.reveal(relative);
    await row.click();
    await this.page.locator(`.tab.active[aria-label*="${path.basename(relative)}"]`).waitFor();
    await this.activeEditor().locator('.view-line', { hasText: firstText }).first().waitFor();
  }

  // ---- command palette and quick picks ------------------------------------------------------------

  /** Runs a command by its title from the command palette (opened from the command center, as with the mouse). */
  async runCommand(title: string): Promise<void> {
    const input = this.page.locator('.quick-input-widget input.input');
    // A webview that finishes loading takes the focus and closes an open palette, as it would under a
    // user's hands, possibly before the palette was ever seen open; like a user, open it again.
    for (let attempt = 1; ; attempt++) {
      await this.page.locator('.command-center-center').click();
      try {
        await input.waitFor({ timeout: 10_000 });
        await input.fill(`>${title}`, { timeout: 10_000 });
        break;
      } catch (err) {
        if (attempt >= 3) throw err;
        await this.page.keyboard.press('Escape');
      }
    }
    const row = this.page.locator('.quick-input-widget .monaco-list-row', { has: this.page.locator('.label-name', { hasText: new RegExp(`^${escapeRegExp(title)}$`) }) });
    await row.first().waitFor();
    await row.first().click();
    await this.page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
  }

  quickInput(): Locator {
    return this.page.locator('.quick-input-widget');
  }

  /**
   * Developer: Reload Window, as a user would, then waits for the workbench to come back: the page navigates,
   * the workbench and the explorer render again (a trusted folder asks nothing this time).
   */
  async reloadWindow(): Promise<void> {
    const navigated = this.page.waitForEvent('framenavigated', { predicate: (frame) => frame === this.page.mainFrame(), timeout: 60_000 });
    const input = this.page.locator('.quick-input-widget input.input');
    await this.page.locator('.command-center-center').click();
    await input.waitFor({ timeout: 10_000 });
    await input.fill('>Developer: Reload Window');
    const row = this.page.locator('.quick-input-widget .monaco-list-row', { has: this.page.locator('.label-name', { hasText: /^Developer: Reload Window$/ }) });
    await row.first().click();
    await navigated;
    await this.page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
    await this.page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 60_000 });
  }

  /** The rows of the visible QuickPick, once it shows at least `minRows`. */
  async quickPickRows(minRows = 1): Promise<{ title: string; rows: QuickPickRow[] }> {
    const widget = this.quickInput();
    await widget.locator('.monaco-list-row').nth(minRows - 1).waitFor({ timeout: 90_000 });
    const rows = await widget.locator('.monaco-list-row').evaluateAll((els: any[]) =>
      els
        .sort((a, b) => Number(a.getAttribute('data-index')) - Number(b.getAttribute('data-index')))
        .map((row) => ({
          label: (row.querySelector('.quick-input-list-row:first-child .label-name')?.innerText ?? '').trim(),
          description: (row.querySelector('.label-description')?.innerText ?? '').trim(),
          detail: (row.querySelector('.quick-input-list-label-meta .label-name')?.innerText ?? '').trim(),
        })),
    );
    return { title: (await widget.locator('.quick-input-title').innerText()).trim(), rows };
  }

  async closeQuickPick(): Promise<void> {
    await this.page.keyboard.press('Escape');
    await this.quickInput().waitFor({ state: 'hidden' });
  }

  // ---- editors ------------------------------------------------------------------------------

  activeEditor(): Locator {
    return this.page.locator('.editor-group-container.active .editor-instance .monaco-editor').first();
  }

  /** The active text editor's rendered lines, top to bottom. */
  async editorLines(): Promise<string[]> {
    return this.activeEditor()
      .locator('.view-line')
      .evaluateAll((els: any[]) => els.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top)).map((e) => e.innerText.replace(/\u00a0/g, ' ')));
  }

  /** Waits for the active editor to show a line containing `text` and to have the keyboard focus. */
  async waitForEditorText(text: string, timeout = 90_000): Promise<void> {
    await this.activeEditor().locator('.view-line', { hasText: text }).first().waitFor({ timeout });
    await this.page.locator('.editor-group-container.active .monaco-editor.focused').waitFor({ timeout });
  }

  // ---- hovers -------------------------------------------------------------------------------

  /** Moves the mouse onto the middle of `text` in the active editor (or in the editors `within`, e.g. a notebook's cells). */
  async hoverText(text: string, within: Locator = this.activeEditor()): Promise<void> {
    // Leave first, so arriving on the text is a fresh hover. A hover still open (it hides after a delay)
    // may cover the next line's text, and arriving on it would keep it open: close it first.
    await this.page.mouse.move(VIEWPORT.width - 5, VIEWPORT.height / 2);
    const open = this.page.locator('.monaco-hover:not(.hidden)');
    // (Escape would also leave a notebook cell's edit mode, so wait for the mouse-out to hide it.)
    if (await open.count()) await open.first().waitFor({ state: 'hidden', timeout: 5_000 }).catch(() => undefined);
    const point = await within.evaluate((editor: any, needle: string) => {
      for (const line of editor.querySelectorAll('.view-line')) {
        const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
        const nodes: any[] = [];
        let full = '';
        while (walker.nextNode()) {
          nodes.push(walker.currentNode);
          full += walker.currentNode.data;
        }
        const at = full.replace(/\u00a0/g, ' ').indexOf(needle);
        if (at < 0) continue;
        let mid = at + Math.floor(needle.length / 2);
        for (const node of nodes) {
          if (mid < node.data.length) {
            const range = document.createRange();
            range.setStart(node, mid);
            range.setEnd(node, mid + 1);
            const box = range.getBoundingClientRect();
            return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
          }
          mid -= node.data.length;
        }
      }
      return null;
    }, text);
    if (!point) throw new Error(`"${text}" is not shown in the active editor`);
    await this.page.mouse.move(point.x, point.y, { steps: 4 });
  }

  /**
   * Hovers `text` until the hover shows this extension's result for it. An uncached image first
   * shows "classifying… (hover again for the result)", and a hover can be dropped when the editor
   * re-renders under the pointer (link decorations arriving): the user then hovers again, and so
   * does this, until `timeout`.
   */
  /** Hovers `text` until a hover showing `message` appears (hovers may need a second approach, as for a user). */
  async hoverWithMessage(text: string, message: string, timeout = 60_000): Promise<Locator> {
    const deadline = Date.now() + timeout;
    const hover = this.page.locator('.monaco-hover:not(.hidden)', { hasText: message });
    for (;;) {
      await this.hoverText(text);
      try {
        await hover.waitFor({ timeout: 10_000 });
        return hover;
      } catch (err) {
        if (!/Timeout/i.test((err as Error).message)) throw err;
      }
      if (Date.now() > deadline) throw new Error(`hovering "${text}" never showed "${message}" within ${timeout / 1000} s`);
      await this.page.mouse.move(VIEWPORT.width - 5, VIEWPORT.height / 2);
    }
  }

  async hoverForPrediction(text: string, fileName: string, timeout = 90_000, within?: Locator): Promise<Locator> {
    const deadline = Date.now() + timeout;
    const ours = this.page.locator('.monaco-hover:not(.hidden)', { hasText: `BEiT Lens · ${fileName}` });
    let last = 'no hover appeared';
    for (;;) {
      const attempt = Math.min(10_000, Math.max(1000, deadline - Date.now()));
      await this.hoverText(text, within);
      try {
        await ours.waitFor({ timeout: attempt });
        // Other hover providers (Markdown's link hover) may still be loading; ours is final once it has a table or a message.
        await ours.locator('table, p:has-text("classifying")').first().waitFor({ timeout: attempt });
        if ((await ours.locator('table').count()) > 0) {
          await ours.locator('table tr').nth(5).waitFor();
          return ours;
        }
        last = await ours.innerText();
      } catch (err) {
        if (!/Timeout/i.test((err as Error).message)) throw err;
      }
      if (Date.now() > deadline) throw new Error(`hovering "${text}" never showed its predictions within ${timeout / 1000} s (last: ${last})`);
      await this.page.mouse.move(VIEWPORT.width - 5, VIEWPORT.height / 2);
      await ours.waitFor({ state: 'hidden' });
    }
  }

  // ---- notebooks ----------------------------------------------------------------------------

  /**
   * The visible notebook editor (code-server's built-in one): its cells' editors are inside it. VS Code
   * lays it over the editor group rather than inside it, and hides the ones not shown.
   */
  notebookEditor(): Locator {
    return this.page.locator('.notebookOverlay.notebook-editor:visible').first();
  }

  /** The notebook cell (a row of the cell list) whose editor shows `text`. */
  notebookCell(text: string): Locator {
    return this.notebookEditor().locator('.cell-list-container .monaco-list-row', { has: this.page.locator('.view-line', { hasText: text }) }).first();
  }

  /** Opens a notebook from the explorer and waits for a cell showing `firstText`. */
  async openNotebook(relative: string, firstText: string): Promise<void> {
    const row = await this.reveal(relative);
    await row.click();
    await this.page.locator(`.tab.active[aria-label*="${path.basename(relative)}"]`).waitFor();
    await this.notebookEditor().locator('.view-line', { hasText: firstText }).first().waitFor({ timeout: 90_000 });
  }

  /**
   * Puts the Markdown cell after the code cell showing `codeText` into edit mode, as with the
   * keyboard: click into the code cell, Escape (cell focus), Down (next cell), Enter (edit).
   */
  async editMarkdownCellAfter(codeText: string, markdownText: string): Promise<void> {
    // An open hover takes the first Escape (and the arrow would then move the code cell's cursor): let it go.
    await this.page.mouse.move(VIEWPORT.width - 5, VIEWPORT.height / 2);
    await this.page.locator('.monaco-hover:not(.hidden)').first().waitFor({ state: 'hidden', timeout: 5_000 }).catch(() => undefined);
    await this.notebookCell(codeText).locator('.view-line', { hasText: codeText }).first().click();
    await this.page.keyboard.press('Escape');
    await this.page.waitForFunction(() => !document.activeElement?.closest('.monaco-editor'), undefined, { timeout: 5_000 }).catch(() => this.page.keyboard.press('Escape'));
    await this.page.keyboard.press('ArrowDown');
    await this.page.keyboard.press('Enter');
    await this.notebookEditor().locator('.view-line', { hasText: markdownText }).first().waitFor();
  }

  /** Scrolls the notebook until the cell showing `text` is rendered (the cell list only renders what is in view). */
  async revealCell(text: string): Promise<Locator> {
    const cell = this.notebookCell(text);
    for (let i = 0; i < 20 && (await cell.count()) === 0; i++) {
      const box = await this.notebookEditor().boundingBox();
      if (box) await this.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await this.page.mouse.wheel(0, 300);
      await this.page.waitForTimeout(200);
    }
    await cell.waitFor();
    await cell.scrollIntoViewIfNeeded();
    return cell;
  }

  /** Clicks `action` in the cell toolbar of the cell showing `cellText` (the toolbar shows while the pointer is on the cell). */
  async cellToolbarAction(cellText: string, action: string): Promise<void> {
    const cell = await this.revealCell(cellText);
    await cell.locator('.view-line', { hasText: cellText }).first().click();
    await cell.hover();
    const button = cell.locator(`.cell-title-toolbar .action-label[aria-label^="${action}"]`);
    await button.waitFor();
    await button.click();
  }

  /** Opens the cell's "More Actions…" menu (its context menu) and clicks `item`. */
  async cellMenuItem(cellText: string, item: string): Promise<void> {
    const cell = await this.revealCell(cellText);
    await cell.locator('.view-line', { hasText: cellText }).first().click();
    await cell.hover();
    const more = cell.locator('.cell-title-toolbar .action-label[aria-label^="More Actions"]');
    await more.waitFor();
    await more.click();
    await this.clickMenuItem(item);
  }

  // ---- notifications --------------------------------------------------------------------------

  /**
   * Starts recording every notification toast's text (and whether it shows a progress bar) from
   * now on, however briefly it is shown; `recorded()` returns them.
   */
  async recordNotifications(): Promise<{ recorded(): Promise<{ text: string; progress: boolean }[]> }> {
    // A string, not a function: the test runner's transpiler would decorate nested functions with helpers the page lacks.
    await this.page.evaluate(`(() => {
      const seen = [];
      window.__beitLensToasts = seen;
      new MutationObserver(() => {
        for (const toast of document.querySelectorAll('.notifications-toasts .notification-toast')) {
          const text = toast.querySelector('.notification-list-item-message')?.innerText ?? '';
          const bar = toast.querySelector('.monaco-progress-container');
          const progress = !!bar && getComputedStyle(bar).display !== 'none' && bar.classList.contains('active');
          if (text && !seen.some((s) => s.text === text && s.progress === progress)) seen.push({ text, progress });
        }
      }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    })()`);
    return { recorded: () => this.page.evaluate(() => window.__beitLensToasts as { text: string; progress: boolean }[]) };
  }

  toast(text: string | RegExp): Locator {
    return this.page.locator('.notifications-toasts .notification-toast', { hasText: text });
  }

  // ---- webviews ------------------------------------------------------------------------------

  /**
   * The document of this extension's webview that shows `selector` (the explanation panel's
   * '#legend', the dataset view's '#rows'). A webview is an iframe (VS Code's host) holding an
   * iframe (the content); hidden webviews are discarded and recreated, so look it up afresh.
   */
  async webview(selector: string, timeout = 90_000): Promise<Frame> {
    const deadline = Date.now() + timeout;
    for (;;) {
      for (const frame of this.page.frames()) {
        const host = frame.parentFrame();
        if (!host || !/extensionId=beit-lens\.beit-lens/.test(host.url())) continue;
        if (await frame.locator(selector).count().catch(() => 0)) return frame;
      }
      if (Date.now() > deadline) throw new Error(`no BEiT Lens webview shows ${selector}`);
      await this.page.waitForEvent('framenavigated', { timeout: 1000 }).catch(() => undefined);
    }
  }
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}
