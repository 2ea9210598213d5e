import type { Command } from 'commander';
import { initRepository } from '../../engine/index.js';
import { CairnError } from '../../core/errors.js';
import { out, repoAccess, resolvePassword, type GlobalOptions } from '../context.js';

export function register(program: Command, g: () => GlobalOptions): void {
  program
    .command('init')
    .description('create a new repository')
    .option('--repository-version <v>', 'repository format version: 1, 2 or "latest"/"stable"', 'stable')
    .option('--chunker <name>', 'content-defined chunker for new data: fastcdc or rabin (restic\'s)', 'fastcdc')
    .option('--from-repo <repo>', 'with --copy-chunker-params: the repository to copy the chunker from')
    .option('--from-password-file <file>', 'password file of --from-repo')
    .option('--copy-chunker-params', 'copy the chunker polynomial and algorithm from --from-repo (dedup across repositories)')
    .action(async (o: { repositoryVersion: string; chunker: string; fromRepo?: string; fromPasswordFile?: string; copyChunkerParams?: boolean }) => {
      const gopts = g();
      const version = o.repositoryVersion === '1' ? 1 : ['2', 'latest', 'stable'].includes(o.repositoryVersion) ? 2 : undefined;
      if (!version) throw new CairnError('INVALID_ARGUMENT', `unsupported repository version ${o.repositoryVersion} (use 1 or 2)`);
      if (o.chunker !== 'fastcdc' && o.chunker !== 'rabin') throw new CairnError('INVALID_ARGUMENT', `unknown chunker ${o.chunker} (use fastcdc or rabin)`);
      const access = repoAccess(gopts);
      let copyFrom;
      if (o.copyChunkerParams) {
        if (!o.fromRepo) throw new CairnError('INVALID_ARGUMENT', '--copy-chunker-params needs --from-repo');
        copyFrom = { repo: o.fromRepo, password: resolvePassword({ passwordFile: o.fromPasswordFile ?? gopts.passwordFile }, 'password for --from-repo') };
      }
      const r = await initRepository({ ...access, version, chunker: o.chunker, copyChunkerFrom: copyFrom });
      if (gopts.json) out(JSON.stringify({ message_type: 'initialized', id: r.id, repository: r.location, version: r.version, chunker: r.chunker }));
      else if (!gopts.quiet) {
        out(`created cairn repository ${r.id.slice(0, 10)} at ${r.location} (format version ${r.version}, chunker ${r.chunker})`);
        out('');
        out('Please note that knowledge of your password is required to access');
        out('the repository. Losing your password means that your data is');
        out('irrecoverably lost.');
      }
    });
}
