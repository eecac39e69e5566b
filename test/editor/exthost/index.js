// The extensionTestsPath entry point: VS Code loads this file inside its extension host (here
// code-server's Node extension host) and calls run(), so the tests use the real `vscode` API.
// Mocha is not a dependency of the project; the runner says where setup.sh installed it.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

function mochaPath() {
  const cache = process.env.EBPF_EDITOR_CACHE || path.join(os.homedir(), '.cache', 'ebpf-portability-editor');
  return path.join(process.env.EBPF_EDITOR_TOOLS || path.join(cache, 'tools'), 'node_modules', 'mocha');
}

/** Runs every *.test.js beside this file; rejects when a test fails, which fails the run. */
exports.run = function run() {
  const Mocha = require(mochaPath());
  // The extension host's console is forwarded to the runner line by line, so no colours.
  const mocha = new Mocha({ ui: 'tdd', color: false, timeout: 60_000, reporter: 'spec' });
  for (const f of fs.readdirSync(__dirname).sort()) if (f.endsWith('.test.js')) mocha.addFile(path.join(__dirname, f));
  return new Promise((resolve, reject) => {
    mocha.run((failures) => {
      console.log(`exthost: ${mocha.suite.total() - failures} passed, ${failures} failed`);
      if (failures) reject(new Error(`${failures} extension-host test(s) failed`));
      else resolve();
    });
  });
};
