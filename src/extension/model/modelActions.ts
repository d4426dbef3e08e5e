/**
 * The ways to a model that a notification offers, in one place: the first "no model" prompt, a request that
 * failed for want of a model, the offline toast of Download Model, the hover, the explanation panel's empty
 * state and the status bar tooltip all list them from here, so a new user
 * who cannot reach the hub sees Convert a Hugging Face Folder… wherever they first meet the problem.
 * No vscode import: the notification is passed in, so the choices are tested without an editor.
 */
import { Command } from '../commandIds';

/** A notification button and the command it runs. */
export interface ModelAction {
  readonly title: string;
  readonly command: string;
}

export const DOWNLOAD_ACTION: ModelAction = { title: 'Download Model', command: Command.downloadModel };
export const CONVERT_ACTION: ModelAction = { title: 'Convert a Hugging Face Folder…', command: Command.convertModel };
export const SELECT_ACTION: ModelAction = { title: 'Select Model Folder…', command: Command.selectModel };
export const DOCTOR_ACTION: ModelAction = { title: 'Run Doctor', command: Command.doctor };

/**
 * A model on beitLens.endpoint that failed: the token, the setting (the Settings editor opened on it: a command
 * link's arguments are a URI-encoded JSON array), or the doctor.
 */
export const REMOTE_FAILURE_ACTIONS: readonly ModelAction[] = [
  { title: 'Set Endpoint Token…', command: Command.setEndpointToken },
  { title: 'Open Settings', command: `workbench.action.openSettings?${encodeURIComponent(JSON.stringify(['beitLens.endpoint']))}` },
  DOCTOR_ACTION,
];

/** Need no network: what is left when the hub cannot be reached. */
export const OFFLINE_MODEL_ACTIONS: readonly ModelAction[] = [CONVERT_ACTION, SELECT_ACTION];

/** No model yet: download it, or the ways that need no network. `downloadTitle` may add what it costs. */
export function noModelActions(downloadTitle = DOWNLOAD_ACTION.title): ModelAction[] {
  return [{ ...DOWNLOAD_ACTION, title: downloadTitle }, ...OFFLINE_MODEL_ACTIONS];
}

/** The same choices as command-palette titles, for text that cannot hold buttons (a tooltip, an error message). */
export function noModelHint(): string {
  const titles = noModelActions().map((a) => `"BEiT Lens: ${a.title}"`);
  return `Run ${titles.slice(0, -1).join(', ')} or ${titles[titles.length - 1]}`;
}

/** Shows `message` with the actions' buttons and runs the chosen one's command; returns that command. */
export async function offerModelActions(
  show: (message: string, ...items: string[]) => PromiseLike<string | undefined>,
  message: string,
  actions: readonly ModelAction[],
  run: (command: string) => unknown,
): Promise<string | undefined> {
  const choice = await show(message, ...actions.map((a) => a.title));
  const action = actions.find((a) => a.title === choice);
  if (action) void run(action.command);
  return action?.command;
}
