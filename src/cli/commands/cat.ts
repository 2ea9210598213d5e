import type { Command } from 'commander';
import { openRepository, catObject } from '../../engine/index.js';
import { CairnError } from '../../core/errors.js';
import { repoAccess, type GlobalOptions } from '../context.js';

const KINDS = ['config', 'masterkey', 'key', 'index', 'snapshot', 'lock', 'pack', 'blob', 'tree'] as const;

export function register(program: Command, g: () => GlobalOptions): void {
  program
    .command('cat')
    .description('print internal objects to stdout (decrypted)')
    .argument('<type>', `one of ${KINDS.join(', ')}`)
    .argument('[id]', 'object ID (or snapshot[:path] for tree)')
    .action(async (type: string, id: string | undefined) => {
      if (!(KINDS as readonly string[]).includes(type)) throw new CairnError('INVALID_ARGUMENT', `invalid type ${JSON.stringify(type)}: use one of ${KINDS.join(', ')}`);
      const repo = await openRepository(repoAccess(g()));
      const data = await catObject(repo, type as (typeof KINDS)[number], id);
      process.stdout.write(data);
      if ((type === 'config' || type === 'masterkey' || type === 'snapshot' || type === 'key' || type === 'lock') && data[data.length - 1] !== 0x0a) process.stdout.write('\n');
    });
}
