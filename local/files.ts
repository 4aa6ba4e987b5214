/**
 * The local gateway's temporary folder: everything it writes lives here and goes with
 * it on stop. The `client/` sub-folder holds what a user needs to talk to the gateway
 * (the local CA and the agent's certificate); the runner prints its path.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface LocalFolder {
  readonly root: string;
  /** Writes `content` to `relativePath` under the root (creating folders), returns the absolute path. */
  write(relativePath: string, content: string, mode?: number): string;
  /** Creates a sub-folder, returns its absolute path. */
  folder(relativePath: string): string;
  remove(): void;
}

export const TEMP_FOLDER_PREFIX = 'looker-gateway-';

export function createLocalFolder(parent: string = os.tmpdir()): LocalFolder {
  const root = mkdtempSync(path.join(parent, TEMP_FOLDER_PREFIX));
  const resolveInside = (relativePath: string) => {
    const absolute = path.resolve(root, relativePath);
    if (!absolute.startsWith(root + path.sep)) throw new Error(`${relativePath} is outside the local gateway folder ${root}.`);
    return absolute;
  };
  return {
    root,
    write(relativePath, content, mode = 0o600) {
      const absolute = resolveInside(relativePath);
      mkdirSync(path.dirname(absolute), { recursive: true, mode: 0o700 });
      writeFileSync(absolute, content, { mode });
      return absolute;
    },
    folder(relativePath) {
      const absolute = resolveInside(relativePath);
      mkdirSync(absolute, { recursive: true, mode: 0o700 });
      return absolute;
    },
    remove() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}
