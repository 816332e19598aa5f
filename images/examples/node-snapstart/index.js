// State built during init and snapshot hooks, for snapshot tests. It draws
// from every random source during init, so that restored copies start with the
// same generator states and caches; what they draw after restore must differ.
const crypto = require('crypto');
const thaw = require('thaw');

const state = { builtAtInit: [1, 4, 9], invocations: 0 };
const hooks = [];
const drawnAtInit = [crypto.randomUUID(), crypto.randomInt(1000), Math.random()];
thaw.registerBeforeSnapshot(() => hooks.push('beforeSnapshot'));
thaw.registerAfterRestore(async () => hooks.push('afterRestore'));

exports.handler = async (event) => {
  state.invocations += 1;
  return {
    state,
    hooks,
    drawnAtInit: drawnAtInit.length,
    random: crypto.randomBytes(8).toString('hex'),
    uuid: crypto.randomUUID(),
    randomInt: crypto.randomInt(2 ** 47),
    mathRandom: Math.random(),
    echo: event,
  };
};
