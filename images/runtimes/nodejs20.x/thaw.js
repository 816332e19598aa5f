// Snapshot hooks for functions: require('thaw').registerBeforeSnapshot(fn) and
// registerAfterRestore(fn). Before-snapshot hooks run once before thaw
// checkpoints the instance; after-restore hooks run in every restored copy
// before its first invocation. Hooks may be async.
'use strict';
const beforeSnapshot = [];
const afterRestore = [];

exports.registerBeforeSnapshot = (fn) => beforeSnapshot.push(fn);
exports.registerAfterRestore = (fn) => afterRestore.push(fn);

exports._runBeforeSnapshot = async () => {
  for (const fn of beforeSnapshot) await fn();
  // Loaded now, so that restored copies do not spend their first milliseconds
  // loading it.
  require('./reseed.js');
};
exports._runAfterRestore = async () => {
  require('./reseed.js').reseedAfterRestore();
  for (const fn of afterRestore) await fn();
};
