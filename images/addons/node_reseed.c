// Node.js addon for thaw's runtime: reseeds OpenSSL's random generator in a
// restored copy. Every copy restored from one snapshot starts with the same
// generator state, and OpenSSL 3 only notices a new process by its pid, which
// CRIU restores unchanged; JavaScript has no call that reseeds it. RAND_seed
// mixes fresh kernel entropy into the primary generator, and the generators
// crypto.randomBytes uses reseed from it on their next draw.
//
// Node.js exports OpenSSL's symbols to addons, so RAND_seed resolves against
// the node binary when the addon loads.
#include <node_api.h>
#include <sys/random.h>

void RAND_seed(const void* buf, int num);

static napi_value reseed(napi_env env, napi_callback_info info) {
  (void)info;
  unsigned char fresh[48];
  size_t got = 0;
  while (got < sizeof fresh) {
    const ssize_t n = getrandom(fresh + got, sizeof fresh - got, 0);
    if (n <= 0) {
      napi_throw_error(env, NULL, "thaw reseed: getrandom failed");
      return NULL;
    }
    got += (size_t)n;
  }
  RAND_seed(fresh, (int)sizeof fresh);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "reseed", NAPI_AUTO_LENGTH, reseed, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "reseed", fn) != napi_ok)
    return NULL;
  return exports;
}
