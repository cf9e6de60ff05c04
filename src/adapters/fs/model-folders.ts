import { randomBytes } from 'node:crypto';
import { access, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MODEL_VERSION } from '../../domain/models/names.js';
import type { ModelFolders } from '../../ports/trainer.js';

/**
 * MODEL_DIR as a publisher writes it: a version is built in a hidden folder next to its final place
 * (`<dir>/<name>/.staging-<version>-<random>`, never listed: not an integer name) and published by one rename, so
 * readers (the service, the model watch) see either no folder or a complete one.
 */
export class FsModelFolders implements ModelFolders {
  constructor(private readonly dir: string) {}

  async nextVersion(name: string): Promise<string> {
    const entries = await readdir(join(this.dir, name)).catch(() => [] as string[]);
    const highest = Math.max(0, ...entries.filter((e) => MODEL_VERSION.test(e)).map(Number));
    return String(highest + 1);
  }

  folder(name: string, version: string): string {
    return join(this.dir, name, version);
  }

  async stage(name: string, version: string): Promise<string> {
    const parent = join(this.dir, name);
    await mkdir(parent, { recursive: true });
    const staged = join(parent, `.staging-${version}-${randomBytes(4).toString('hex')}`);
    await mkdir(staged);
    return staged;
  }

  async publish(staged: string, name: string, version: string): Promise<string> {
    const target = this.folder(name, version);
    const exists = await access(target).then(
      () => true,
      () => false,
    );
    if (exists) throw new Error(`${target} already exists; another publisher took version ${version}`);
    await rename(staged, target);
    return target;
  }

  async discard(staged: string): Promise<void> {
    await rm(staged, { recursive: true, force: true });
  }
}
