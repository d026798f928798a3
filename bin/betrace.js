#!/usr/bin/env node
/* global require, process, __dirname */
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS on purpose (see below) */
/*
 * The betrace command: checks the Node.js version, then runs the command line
 * from source in a clone (src/cli/main.ts: Node strips the types), else built
 * (dist/cli/main.js: the package as `npm pack` lays it out, without src/). The
 * source wins where both exist, so a dist/ left by `npm run build` in a clone
 * never runs instead of the code being edited.
 *
 * CommonJS (bin/package.json), ES5 but for import(): every Node.js since 10 parses it, so an
 * unsupported Node gets one line saying what to install instead of a syntax or
 * module error. The supported versions are package.json's engines.node, read as
 * "each alternative on its own release line, the newest one for every later
 * line": ">= 22.22.0 || >= 24.6.0" admits 22.22+, 24.6+ and 25+, not 23.
 */
'use strict';
var fs = require('fs');
var path = require('path');
var url = require('url');

var root = path.join(__dirname, '..');

function parseVersion(text) {
  var m = /(\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

function atLeast(v, min) {
  for (var i = 0; i < 3; i++) if (v[i] !== min[i]) return v[i] > min[i];
  return true;
}

/** The minimum versions of engines.node (">= a.b.c || >= x.y.z"), oldest line first. */
function minimums() {
  var engines = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).engines;
  return engines.node
    .split('||')
    .map(parseVersion)
    .filter(function (v) { return v !== null; })
    .sort(function (a, b) { return a[0] - b[0]; });
}

function supported(v, mins) {
  var newest = mins[mins.length - 1];
  if (v[0] > newest[0]) return true;
  return mins.some(function (min) { return v[0] === min[0] && atLeast(v, min); });
}

var mins = minimums();
var current = parseVersion(process.versions.node);
if (!supported(current, mins)) {
  var wanted = mins.map(function (m) { return '>= ' + m[0] + '.' + m[1]; }).join(' or ');
  var latest = mins[mins.length - 1][0];
  process.stderr.write(
    'betrace needs Node.js ' + wanted + ' (this is ' + process.version + '): install Node ' + latest +
      ' LTS from https://nodejs.org or with your version manager (nvm install ' + latest + ')\n'
  );
  process.exit(1);
}

var source = path.join(root, 'src', 'cli', 'main.ts');
var fromSource = fs.existsSync(source);
var entry = fromSource ? source : path.join(root, 'dist', 'cli', 'main.js');
if (fromSource && !fs.existsSync(path.join(root, 'src', 'rules', 'grammar.generated.js'))) {
  process.stderr.write('betrace: the rule parser is not generated (src/rules/grammar.generated.js): run `npm run grammar` (npm ci does it)\n');
  process.exit(1);
}
import(url.pathToFileURL(entry).href).then(
  function (cli) { cli.runCli(); },
  function (err) {
    process.stderr.write('betrace: cannot load ' + entry + ': ' + (err && err.stack ? err.stack : String(err)) + '\n');
    process.exitCode = 1;
  }
);
