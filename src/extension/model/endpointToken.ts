/**
 * The endpoint's bearer token lives in VS Code's SecretStorage (the OS keychain), never in settings.json where
 * it would be synced, committed or shown. No vscode import: the extension passes `context.secrets`.
 */
export const ENDPOINT_TOKEN_SECRET = 'beitLens.endpointToken';

/** What the worker's authentication errors tell the user about this token. */
export const SECRET_TOKEN_SOURCE = {
  from: 'BEiT Lens: Set Endpoint Token',
  howToSet: 'run "BEiT Lens: Set Endpoint Token" with a bearer token the server accepts',
};

/** The part of vscode.SecretStorage used here. */
export interface SecretStore {
  get(key: string): PromiseLike<string | undefined>;
  store(key: string, value: string): PromiseLike<void>;
  delete(key: string): PromiseLike<void>;
}

export function readEndpointToken(secrets: SecretStore): PromiseLike<string | undefined> {
  return secrets.get(ENDPOINT_TOKEN_SECRET);
}

/** Why `text` cannot be stored as the token, for the input box; undefined when it can. */
export function endpointTokenProblem(text: string): string | undefined {
  const token = text.trim();
  if (!token) return 'Enter the token (run "BEiT Lens: Clear Endpoint Token" to remove the stored one)';
  // Undici refuses such a header value; said here, before anything is stored.
  if (/[\r\n\0]/.test(token)) return 'The token has a line break or NUL inside: it cannot go in an Authorization header';
  return undefined;
}

/** Stores the answer trimmed: a pasted token often brings a newline. */
export async function storeEndpointToken(secrets: SecretStore, answer: string): Promise<void> {
  const problem = endpointTokenProblem(answer);
  if (problem) throw new Error(problem);
  await secrets.store(ENDPOINT_TOKEN_SECRET, answer.trim());
}

/** Whether there was a token to remove. */
export async function clearEndpointToken(secrets: SecretStore): Promise<boolean> {
  const had = (await secrets.get(ENDPOINT_TOKEN_SECRET)) !== undefined;
  if (had) await secrets.delete(ENDPOINT_TOKEN_SECRET);
  return had;
}
