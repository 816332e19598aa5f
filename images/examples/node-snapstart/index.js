// State built during init and snapshot hooks, for snapshot tests.
const crypto = require('crypto');
const thaw = require('thaw');

const state = { builtAtInit: [1, 4, 9], invocations: 0 };
const hooks = [];
thaw.registerBeforeSnapshot(() => hooks.push('beforeSnapshot'));
thaw.registerAfterRestore(async () => hooks.push('afterRestore'));

exports.handler = async (event) => {
  state.invocations += 1;
  return { state, hooks, random: crypto.randomBytes(8).toString('hex'), echo: event };
};
