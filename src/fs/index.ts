/** The file-system shell used by the archiver (backup) and the restorer. */
export * from './path.js';
export * from './meta.js';
export * from './exclude.js';
export * from './read.js';
export * from './restore.js';
export * from './walk.js';
export { withNativePath, createViaNativePath, tempName, type NativePathOptions } from './native-path.js';
