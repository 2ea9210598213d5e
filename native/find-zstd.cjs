// Prints the directory of the installed zstd-napi package when it holds what the addon links
// against (the static library its own build produced and the zstd headers), else nothing.
// Used by binding.gyp at configure time; CommonJS so that it runs inside this ESM package.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function find() {
  let main;
  try {
    main = require.resolve('zstd-napi', { paths: [__dirname, path.join(__dirname, '..')] });
  } catch {
    return '';
  }
  // Walk up from the package's main file to its package.json.
  for (let dir = path.dirname(main); ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if (JSON.parse(fs.readFileSync(pkg, 'utf8')).name !== 'zstd-napi') return '';
      } catch {
        return '';
      }
      const lib = path.join(dir, 'build', 'Release', 'zstd.a');
      const header = path.join(dir, 'deps', 'zstd', 'lib', 'zstd.h');
      return fs.existsSync(lib) && fs.existsSync(header) ? dir : '';
    }
    if (path.dirname(dir) === dir) return '';
  }
}

process.stdout.write(find());
