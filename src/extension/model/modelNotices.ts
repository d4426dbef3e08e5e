/**
 * Notices about the model's state ("needs the model", "could not load beitLens.modelPath", a request's "no model
 * yet") close themselves at the next state change. An error toast still on screen after the user has selected a
 * working model reads as a new failure (issue #17). VS Code cannot take back a message shown with
 * showErrorMessage; it closes a progress notification when its task settles. So these notices are progress
 * notifications that last until the state changes, and their actions are command links in the text (a progress
 * notification has no buttons of its own). It is cancellable, so Cancel dismisses it: that button also keeps the
 * toast expanded, where a collapsed one would cut the text, links included, to one line.
 * No vscode import: the notification is passed in, so tests drive the state with fakes.
 */
import type { ModelState } from '../inference/inferenceClient';
import type { Disposable } from '../util/emitter';
import type { ModelAction } from './modelActions';

export interface ModelStateSource {
  readonly onDidChangeState: (listener: (state: ModelState) => void) => Disposable;
}

/** Shows `text` (Markdown links allowed) until `until` settles; settles itself once the notice is gone, for either reason. */
export type ShowNoticeUntil = (text: string, until: Promise<unknown>) => PromiseLike<void>;

/** The actions as command links, for a notification that cannot hold buttons. */
export function actionLinks(actions: readonly ModelAction[]): string {
  return actions.map((a) => `[${a.title}](command:${a.command})`).join(' · ');
}

export class ModelNotices implements Disposable {
  /** Notices on screen now, by text: a second identical request while there is no model adds no second notice. */
  private readonly open = new Map<string, () => void>();

  constructor(
    private readonly source: ModelStateSource,
    private readonly showUntil: ShowNoticeUntil,
  ) {}

  /** Shows the notice; resolves with the state that closed it (undefined when dismissed or disposed first). */
  show(message: string, actions: readonly ModelAction[]): Promise<ModelState | undefined> {
    const text = actions.length ? `${/[.?!]$/.test(message) ? message : `${message}.`} ${actionLinks(actions)}` : message;
    if (this.open.has(text)) return Promise.resolve(undefined);
    let close!: (state: ModelState | undefined) => void;
    const closed = new Promise<ModelState | undefined>((resolve) => {
      const subscription = this.source.onDidChangeState((state) => close(state));
      close = (state) => {
        subscription.dispose();
        if (this.open.get(text) === closeNow) this.open.delete(text);
        resolve(state);
      };
    });
    const closeNow = () => close(undefined);
    this.open.set(text, closeNow);
    // Dismissed by the user: the same notice may be shown again.
    void this.showUntil(text, closed).then(closeNow);
    return closed;
  }

  dispose(): void {
    for (const close of [...this.open.values()]) close();
  }
}
