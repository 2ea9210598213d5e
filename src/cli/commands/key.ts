import type { Command } from 'commander';
import { openRepository, listKeys, addKey, removeKey, changePassword } from '../../engine/index.js';
import { out, repoAccess, resolvePassword, type GlobalOptions } from '../context.js';
import { printTable } from './snapshots.js';

function newPassword(o: { newPasswordFile?: string }): string {
  return resolvePassword({ passwordFile: o.newPasswordFile ?? process.env.CAIRN_NEW_PASSWORD_FILE }, 'new password (--new-password-file)');
}

export function register(program: Command, g: () => GlobalOptions): void {
  const key = program.command('key').description('manage keys (passwords) of a repository');
  key
    .command('list')
    .description('list keys')
    .action(async () => {
      const gopts = g();
      const keys = await listKeys(await openRepository(repoAccess(gopts)));
      if (gopts.json) {
        out(JSON.stringify(keys.map((k) => ({ current: k.current, id: k.id.slice(0, 8), userName: k.userName, hostName: k.hostName, created: k.created }))));
        return;
      }
      printTable([' ID', 'User', 'Host', 'Created'], keys.map((k) => [`${k.current ? '*' : ' '}${k.id.slice(0, 8)}`, k.userName, k.hostName, k.created]));
    });
  key
    .command('add')
    .description('add a new key (password)')
    .option('--new-password-file <file>', 'file containing the new password')
    .action(async (o: { newPasswordFile?: string }) => {
      const gopts = g();
      const repo = await openRepository(repoAccess(gopts));
      const id = await addKey(repo, newPassword(o));
      out(gopts.json ? JSON.stringify({ message_type: 'key_added', id }) : `saved new key as ${id.slice(0, 8)}`);
    });
  key
    .command('remove')
    .description('remove a key (not the one in use)')
    .argument('<id>', 'key ID or prefix')
    .action(async (id: string) => {
      const gopts = g();
      const removed = await removeKey(await openRepository(repoAccess(gopts)), id);
      out(gopts.json ? JSON.stringify({ message_type: 'key_removed', id: removed }) : `removed key ${removed.slice(0, 8)}`);
    });
  key
    .command('passwd')
    .description('change the password of the key in use')
    .option('--new-password-file <file>', 'file containing the new password')
    .action(async (o: { newPasswordFile?: string }) => {
      const gopts = g();
      const id = await changePassword(await openRepository(repoAccess(gopts)), newPassword(o));
      out(gopts.json ? JSON.stringify({ message_type: 'password_changed', id }) : `saved new key as ${id.slice(0, 8)}, removed the old one`);
    });
}
