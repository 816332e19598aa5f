// thaw's Node.js runtime: loads the handler (init), then serves invocations
// one at a time over the frame channel: frames from thawd on fd 3, to thawd on
// fd 4 (see invoker/protocol/frame_channel.hpp).
'use strict';
const net = require('net');
const path = require('path');

// Functions require('thaw') for snapshot hooks; it lives next to this file.
process.env.NODE_PATH = [__dirname, process.env.NODE_PATH].filter(Boolean).join(':');
require('module').Module._initPaths();
const thaw = require('./thaw.js');

const channel = new net.Socket({ fd: 3, readable: true, writable: false });
const channelOut = new net.Socket({ fd: 4, readable: false, writable: true });
delete process.env.THAW_CHANNEL_FD;

function send(header, body = Buffer.alloc(0)) {
  const head = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(head.length, 0);
  prefix.writeUInt32BE(body.length, 4);
  return new Promise((resolve) => channelOut.write(Buffer.concat([prefix, head, body]), resolve));
}

// Frames arrive as a byte stream: collect until one is whole.
let pending = Buffer.alloc(0);
let waiting = null;
channel.on('data', (chunk) => {
  pending = Buffer.concat([pending, chunk]);
  tryDeliver();
});
channel.on('end', () => process.exit(0));
channel.on('error', () => process.exit(0));

function tryDeliver() {
  if (!waiting || pending.length < 8) return;
  const headLen = pending.readUInt32BE(0), bodyLen = pending.readUInt32BE(4);
  if (pending.length < 8 + headLen + bodyLen) return;
  const header = JSON.parse(pending.subarray(8, 8 + headLen).toString());
  const body = pending.subarray(8 + headLen, 8 + headLen + bodyLen);
  pending = pending.subarray(8 + headLen + bodyLen);
  const resolve = waiting;
  waiting = null;
  resolve({ header, body });
}

function nextFrame() {
  return new Promise((resolve) => {
    waiting = resolve;
    tryDeliver();
  });
}

function errorBody(errorType, errorMessage, trace) {
  const body = { errorType, errorMessage };
  if (trace) body.trace = trace;
  return Buffer.from(JSON.stringify(body));
}

// Output written before the answer must reach thawd before the answer does.
function flushed() {
  return new Promise((resolve) => process.stdout.write('', () => process.stderr.write('', resolve)));
}

class InitFailure extends Error {
  constructor(errorType, message, trace) {
    super(message);
    this.errorType = errorType;
    this.trace = trace;
  }
}

function loadHandler() {
  const spec = process.env._HANDLER || '';
  const dot = spec.lastIndexOf('.');
  if (dot <= 0) throw new InitFailure('Runtime.MalformedHandlerName', `Bad handler ${spec}`);
  const file = spec.slice(0, dot), name = spec.slice(dot + 1);
  const root = process.env.LAMBDA_TASK_ROOT || '/var/task';
  let mod;
  try {
    mod = require(path.resolve(root, file));
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(path.resolve(root, file))) {
      throw new InitFailure('Runtime.ImportModuleError', `Error: Cannot find module '${file}'`);
    }
    if (e instanceof SyntaxError) throw new InitFailure('Runtime.UserCodeSyntaxError', `${e.name}: ${e.message}`);
    throw new InitFailure('Runtime.InitError', `${e && e.name}: ${e && e.message}`, String(e && e.stack).split('\n'));
  }
  const handler = mod[name];
  if (typeof handler !== 'function') {
    throw new InitFailure('Runtime.HandlerNotFound', `${file}.${name} is undefined or not exported`);
  }
  return handler;
}

function makeContext(header) {
  const env = process.env;
  return {
    awsRequestId: header.request_id,
    invokedFunctionArn: header.function_arn,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, Math.floor(header.deadline_ms - Date.now())),
  };
}

// Runs an async handler, or a callback-style one (three parameters).
function callHandler(handler, event, context) {
  if (handler.length >= 3) {
    return new Promise((resolve, reject) => {
      const result = handler(event, context, (err, value) => (err ? reject(err) : resolve(value)));
      if (result && typeof result.then === 'function') result.then(resolve, reject);
    });
  }
  return Promise.resolve().then(() => handler(event, context));
}

async function serve(handler) {
  for (;;) {
    const { header, body } = await nextFrame();
    if (header.type === 'prepare_snapshot') {
      await thaw._runBeforeSnapshot();
      await flushed();
      await send({ type: 'snapshot_ready' });
      continue;
    }
    if (header.type === 'restored') {
      // How long the hooks took, so thawd can tell them from CRIU's share.
      const resumed = process.hrtime.bigint();
      await thaw._runAfterRestore();
      await flushed();
      await send({ type: 'ready', hooks_ms: Number(process.hrtime.bigint() - resumed) / 1e6 });
      continue;
    }
    if (header.type !== 'invoke') continue;
    const context = makeContext(header);
    let event;
    try {
      event = body.length ? JSON.parse(body.toString()) : {};
    } catch (e) {
      await flushed();
      await send({ type: 'error' }, errorBody('Runtime.UnmarshalError', `Unable to parse input as JSON: ${e.message}`));
      continue;
    }
    try {
      const result = await callHandler(handler, event, context);
      const text = JSON.stringify(result === undefined ? null : result);
      await flushed();
      await send({ type: 'response' }, Buffer.from(text));
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      console.error(`Invoke Error ${JSON.stringify({ errorType: err.name, errorMessage: err.message })}`);
      await flushed();
      await send({ type: 'error' }, errorBody(err.name, err.message, String(err.stack || '').split('\n')));
    }
  }
}

(async () => {
  const started = process.hrtime.bigint();
  let handler;
  try {
    handler = loadHandler();
  } catch (e) {
    const type = e.errorType || 'Runtime.InitError';
    console.error(`[ERROR] ${type}: ${e.message}`);
    await flushed();
    await send({ type: 'init_error' }, errorBody(type, e.message, e.trace));
    channelOut.end();
    return;
  }
  await flushed();
  await send({ type: 'ready', init_ms: Number(process.hrtime.bigint() - started) / 1e6 });
  await serve(handler);
})();
