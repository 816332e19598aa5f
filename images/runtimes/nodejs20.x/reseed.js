// Runs first in every copy restored from a snapshot, before the function's own
// after-restore hooks. All copies start from the same memory, so every random
// generator that was seeded during init would repeat across them:
// - OpenSSL's (crypto.randomBytes, randomUUID, randomInt, webcrypto): the
//   thaw_reseed addon mixes fresh kernel entropy into it.
// - Node.js's own caches of random bytes drawn before the snapshot: UUIDs come
//   from a batch of 128, randomInt from 6 KiB. Drawing through the rest of
//   each makes the next draw refill it from the reseeded generator.
// - V8's Math.random, which JavaScript cannot reseed: replaced by a generator
//   seeded from the reseeded OpenSSL. (Code that kept a reference to the old
//   Math.random during init still draws from the copied state.)
'use strict';
const crypto = require('crypto');
const addon = require('./thaw_reseed.node');

const kUuidBatch = 128;
const kRandomIntCacheDraws = 1024; // 6 KiB, 6 bytes a draw

// xoshiro128** with 53-bit doubles, seeded with 128 fresh bits.
function seededMathRandom() {
  const s = new Uint32Array(crypto.randomBytes(16).buffer.slice(0, 16));
  if (!(s[0] | s[1] | s[2] | s[3])) s[0] = 1; // the all-zero state is a fixed point
  const next = () => {
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  };
  return function random() {
    return ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
  };
}

function rotl(x, k) {
  return (x << k) | (x >>> (32 - k));
}

exports.reseedAfterRestore = () => {
  addon.reseed();
  for (let i = 0; i < kUuidBatch; i++) crypto.randomUUID();
  for (let i = 0; i <= kRandomIntCacheDraws; i++) crypto.randomInt(1);
  Math.random = seededMathRandom();
};
