// A function that calls an HTTP service over egress. Its policy must allow
// the service, e.g. {"Egress": {"Allow": ["10.0.5.8/32:8080"]}}; the URL comes
// from the environment (SERVICE_URL) or the event (url).
//
// Node's global fetch keeps connections alive between invocations; a restored
// copy never inherits them (thaw restores a snapshot's connections closed),
// and the next request opens its own.
exports.handler = async (event) => {
  const url = event.url || process.env.SERVICE_URL;
  if (!url) throw new Error("no url: set SERVICE_URL or send {\"url\": ...}");
  const started = Date.now();
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const body = await response.text();
  return { status: response.status, body, ms: Date.now() - started };
};
