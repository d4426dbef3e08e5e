import type { Command } from 'commander';
import { terminalText } from '../core/safeOutput';

/**
 * Commander prints an argument error followed by the whole help, which buries the one line that matters. Every
 * command (and the subcommands other modules register) instead prints that line in the CLI's own
 * `beit-lens: ...` form and points at its own help.
 */
export function oneLineArgumentErrors(command: Command, prefix = 'beit-lens'): void {
  const name = command.parent ? `${prefix} ${command.name()}` : prefix;
  command.showHelpAfterError(false);
  command.configureOutput({
    ...command.configureOutput(),
    // Commander's messages start "error: " and may wrap onto several lines (its own help width): one line here.
    outputError: (text, write) => write(`beit-lens: ${terminalText(text.replace(/^error:\s*/, '').replace(/\s*[\r\n]+\s*/g, ' ').trim())}; see \`${name} --help\`\n`),
  });
  for (const sub of command.commands) oneLineArgumentErrors(sub, name);
}
