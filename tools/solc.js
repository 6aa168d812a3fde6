#!/usr/bin/env node
// A native-solc command line over solc-js (the official compiler built to WebAssembly).
//
// Why: no native solc can be installed from the registries this project may use, and
// py-solc-x (which brownie drives) only runs executables named `solc-v<version>` that
// answer `--version` like native solc and speak `--standard-json`. This speaks exactly
// that subset; everything else is refused with a clear message.
'use strict';
const fs = require('fs');
const path = require('path');

const projectRoot = path.resolve(__dirname, '..');
const nodeModules = path.join(projectRoot, 'node_modules');
const versionCache = path.join(projectRoot, '.provenance', 'solc-version.txt');

function loadSolc() {
  try {
    return require(path.join(nodeModules, 'solc'));
  } catch (err) {
    process.stderr.write('solc-js is not installed: run `npm ci` in ' + projectRoot + '\n');
    process.exit(2);
  }
}

// Native solc prints e.g. "0.8.30+commit.73712a01.Linux.g++"; solc-js says ".Emscripten.clang".
// py-solc-x parses the native form, so report the same commit under the native suffix.
function nativeVersion() {
  const pkg = JSON.parse(fs.readFileSync(path.join(nodeModules, 'solc', 'package.json'), 'utf8'));
  try {
    const cached = fs.readFileSync(versionCache, 'utf8').trim();
    // The cache is only trusted for the installed package version (loading soljson costs ~0.6 s).
    if (cached.startsWith(pkg.version + '+')) return cached;
  } catch (_) { /* no cache yet */ }
  const full = loadSolc().version().replace(/\.Emscripten\.clang$/, '.Linux.g++');
  try {
    fs.mkdirSync(path.dirname(versionCache), { recursive: true });
    fs.writeFileSync(versionCache, full + '\n');
  } catch (_) { /* a read-only checkout still compiles */ }
  return full;
}

// Imports resolve against the project, then node_modules (remappings are applied by the
// caller's standard-json settings before they reach us).
function findImports(importPath) {
  const candidates = [path.resolve(projectRoot, importPath), path.join(nodeModules, importPath)];
  for (const candidate of candidates) {
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, 'utf8') };
  }
  return { error: 'File not found: ' + importPath + ' (looked in the project and node_modules)' };
}

function writeAndExit(text, code) {
  // process.exit() right after a large write truncates a piped stdout at 64 KiB:
  // exit only once the write has drained.
  process.stdout.write(text, () => { process.exitCode = code; });
}

function main(argv) {
  if (argv.includes('--version')) {
    writeAndExit('solc, the solidity compiler commandline interface\nVersion: ' + nativeVersion() + '\n', 0);
    return;
  }
  if (argv.includes('--standard-json')) {
    const input = fs.readFileSync(0, 'utf8');
    const output = loadSolc().compile(input, { import: findImports });
    writeAndExit(output, 0);
    return;
  }
  process.stderr.write('tools/solc only supports --version and --standard-json (it wraps solc-js for brownie)\n');
  process.exitCode = 2;
}

main(process.argv.slice(2));
