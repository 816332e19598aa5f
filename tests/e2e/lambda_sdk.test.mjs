// The AWS SDK for JavaScript v3 Lambda client, unmodified, against a real
// thawd: only the endpoint is overridden, and requests are signed with
// Signature Version 4 using the access key thawd created.
// Run by ctest: THAWD_PATH=... THAW_SOURCE_DIR=... node --test lambda_sdk.test.mjs
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  LambdaClient, CreateFunctionCommand, GetFunctionCommand, ListFunctionsCommand,
  UpdateFunctionCodeCommand, UpdateFunctionConfigurationCommand, InvokeCommand,
  PutFunctionConcurrencyCommand, DeleteFunctionConcurrencyCommand, DeleteFunctionCommand,
  paginateListFunctions,
} from "@aws-sdk/client-lambda";

const thawdPath = process.env.THAWD_PATH;
const source = process.env.THAW_SOURCE_DIR;
const work = mkdtempSync(join(tmpdir(), "thaw-sdk-"));
let thawd, port, lambda, keyId, secret;

// A zip of a directory (modes kept), made with Python's zipfile (the test's own tool).
function zipDir(dir) {
  return execFileSync("python3", ["-c",
    "import io,os,sys,zipfile\nb=io.BytesIO()\nroot=sys.argv[1]\n" +
    "with zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED) as z:\n" +
    "  for d,_,fs in sorted(os.walk(root)):\n" +
    "    for f in sorted(fs):\n" +
    "      if '__pycache__' not in d: p=os.path.join(d,f); z.write(p,os.path.relpath(p,root))\n" +
    "sys.stdout.buffer.write(b.getvalue())", dir], { maxBuffer: 256 << 20 });
}
const zipOf = (example) => zipDir(join(source, "images/examples", example));

function client(id = keyId, key = secret) {
  return new LambdaClient({
    endpoint: `http://127.0.0.1:${port}`, region: "us-east-1", maxAttempts: 1,
    credentials: { accessKeyId: id, secretAccessKey: key },
  });
}

async function create(name, handler, example, extra = {}) {
  return lambda.send(new CreateFunctionCommand({
    FunctionName: name, Runtime: "python3.11", Handler: handler,
    Role: "arn:aws:iam::000000000000:role/thaw", Code: { ZipFile: zipOf(example) },
    SnapStart: { ApplyOn: "None" }, ...extra,
  }));
}

const text = (bytes) => Buffer.from(bytes).toString();

before(async () => {
  thawd = spawn(thawdPath, ["--listen", "127.0.0.1:0", "--state-dir", join(work, "state"),
    "--cgroup-parent", `thaw-sdk-${process.pid}`, "--retry-backoff-ms", "50"],
    { stdio: ["ignore", "ignore", "pipe"] });
  port = await new Promise((resolve, reject) => {
    let seen = "";
    thawd.stderr.on("data", (chunk) => {
      seen += chunk;
      const m = seen.match(/"event":"listening"[^\n]*"port":(\d+)|"port":(\d+)[^\n]*"event":"listening"/);
      if (m) resolve(Number(m[1] ?? m[2]));
    });
    thawd.on("exit", (code) => reject(new Error(`thawd exited (${code}): ${seen}`)));
  });
  const credentials = readFileSync(join(work, "state", "aws-credentials"), "utf8");
  keyId = credentials.match(/aws_access_key_id = (\S+)/)[1];
  secret = credentials.match(/aws_secret_access_key = (\S+)/)[1];
  lambda = client();
});

after(async () => {
  if (thawd && thawd.exitCode === null) {
    const exited = new Promise((resolve) => thawd.on("exit", resolve));
    thawd.kill("SIGTERM");
    await exited;
  }
  rmSync(work, { recursive: true, force: true });
});

test("CreateFunction from a zip, GetFunction, Invoke with Tail logs, DeleteFunction", async () => {
  const created = await create("hello", "handler.handler", "python-hello");
  assert.equal(created.FunctionName, "hello");
  assert.equal(created.State, "Active");
  assert.equal(created.FunctionArn, "arn:aws:lambda:us-east-1:000000000000:function:hello");
  const got = await lambda.send(new GetFunctionCommand({ FunctionName: "hello" }));
  assert.equal(got.Configuration.Handler, "handler.handler");
  assert.equal(got.Configuration.MemorySize, 128);

  const out = await lambda.send(new InvokeCommand({
    FunctionName: "hello", Payload: Buffer.from(JSON.stringify({ name: "sdk" })), LogType: "Tail",
  }));
  assert.equal(out.StatusCode, 200);
  assert.equal(out.FunctionError, undefined);
  assert.equal(JSON.parse(text(out.Payload)).message, "hello sdk");
  assert.equal(out.ExecutedVersion, "$LATEST");
  assert.match(Buffer.from(out.LogResult, "base64").toString(), /REPORT RequestId: \S+\tDuration: /);

  await lambda.send(new DeleteFunctionCommand({ FunctionName: "hello" }));
  await assert.rejects(lambda.send(new GetFunctionCommand({ FunctionName: "hello" })),
    { name: "ResourceNotFoundException" });
});

test("ListFunctions pages with Marker and MaxItems", async () => {
  for (const name of ["page-a", "page-b", "page-c"]) await create(name, "handler.handler", "python-hello");
  const first = await lambda.send(new ListFunctionsCommand({ MaxItems: 2 }));
  assert.equal(first.Functions.length, 2);
  assert.ok(first.NextMarker);
  const second = await lambda.send(new ListFunctionsCommand({ MaxItems: 2, Marker: first.NextMarker }));
  assert.deepEqual(second.Functions.map((f) => f.FunctionName), ["page-c"]);
  assert.equal(second.NextMarker, undefined);
  const all = [];
  for await (const page of paginateListFunctions({ client: lambda, pageSize: 1 }, {}))
    all.push(...page.Functions.map((f) => f.FunctionName));
  assert.deepEqual(all.filter((n) => n.startsWith("page-")), ["page-a", "page-b", "page-c"]);
});

test("UpdateFunctionConfiguration and UpdateFunctionCode are seen by the next invocation", async () => {
  await create("env", "handler.environment", "python-errors");
  await lambda.send(new UpdateFunctionConfigurationCommand({
    FunctionName: "env", Environment: { Variables: { COLOUR: "blue" } }, Timeout: 10,
  }));
  let out = await lambda.send(new InvokeCommand({ FunctionName: "env" }));
  assert.equal(JSON.parse(text(out.Payload)).COLOUR, "blue");
  const updated = await lambda.send(new UpdateFunctionCodeCommand({
    FunctionName: "env", ZipFile: zipOf("python-hello"),
  }));
  assert.ok(updated.CodeSha256);
  await lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: "env", Handler: "handler.handler" }));
  out = await lambda.send(new InvokeCommand({ FunctionName: "env", Payload: Buffer.from('{"name":"new"}') }));
  assert.equal(JSON.parse(text(out.Payload)).message, "hello new");
});

test("Invoke as Event and DryRun; function errors carry FunctionError", async () => {
  await create("errors", "handler.raise_error", "python-errors");
  const event = await lambda.send(new InvokeCommand({ FunctionName: "errors", InvocationType: "Event" }));
  assert.equal(event.StatusCode, 202);
  const dry = await lambda.send(new InvokeCommand({ FunctionName: "errors", InvocationType: "DryRun" }));
  assert.equal(dry.StatusCode, 204);
  const failed = await lambda.send(new InvokeCommand({ FunctionName: "errors" }));
  assert.equal(failed.FunctionError, "Unhandled");
  assert.equal(JSON.parse(text(failed.Payload)).errorType, "ValueError");
});

test("PutFunctionConcurrency 0 throttles: TooManyRequestsException", async () => {
  await create("throttled", "handler.handler", "python-hello");
  const put = await lambda.send(new PutFunctionConcurrencyCommand({
    FunctionName: "throttled", ReservedConcurrentExecutions: 0,
  }));
  assert.equal(put.ReservedConcurrentExecutions, 0);
  await assert.rejects(lambda.send(new InvokeCommand({ FunctionName: "throttled" })),
    (e) => e.name === "TooManyRequestsException" && e.Reason === "ReservedFunctionConcurrentInvocationLimitExceeded");
  await lambda.send(new DeleteFunctionConcurrencyCommand({ FunctionName: "throttled" }));
  const out = await lambda.send(new InvokeCommand({ FunctionName: "throttled" }));
  assert.equal(out.StatusCode, 200);
});

test("The SDK raises Lambda's named exceptions", async () => {
  await assert.rejects(lambda.send(new InvokeCommand({ FunctionName: "nope" })),
    { name: "ResourceNotFoundException" });
  await assert.rejects(create("too-small", "handler.handler", "python-hello", { MemorySize: 64 }),
    (e) => e.name === "InvalidParameterValueException" && /MemorySize/.test(e.message));
  await create("big", "handler.handler", "python-hello");
  await assert.rejects(lambda.send(new InvokeCommand({
    FunctionName: "big", Payload: Buffer.alloc(7 * 1024 * 1024, 0x61),
  })), { name: "RequestTooLargeException" });
});

test("A wrong secret or an unknown key is refused with 403", async () => {
  await assert.rejects(client(keyId, "x".repeat(40)).send(new ListFunctionsCommand({})),
    (e) => e.name === "InvalidSignatureException" && e.$metadata.httpStatusCode === 403);
  await assert.rejects(client("AKIAUNKNOWNUNKNOWN00", secret).send(new ListFunctionsCommand({})),
    (e) => e.name === "UnrecognizedClientException" && e.$metadata.httpStatusCode === 403);
});

test("Forcing a start mode needs the admin token: a signed request with it is refused", async () => {
  await create("forced", "handler.handler", "python-hello");
  const forcing = client();
  // Added before signing, so the header is part of a valid signature.
  forcing.middlewareStack.add((next) => async (args) => {
    args.request.headers["x-thaw-start-mode"] = "cold";
    return next(args);
  }, { step: "build", name: "forceStartMode" });
  await assert.rejects(forcing.send(new InvokeCommand({ FunctionName: "forced" })),
    (e) => e.name === "AccessDeniedException" && e.$metadata.httpStatusCode === 403 &&
      /X-Thaw-Start-Mode needs the admin token/.test(e.message));
  const out = await lambda.send(new InvokeCommand({ FunctionName: "forced" }));
  assert.equal(out.StatusCode, 200);
});

test("Runtime API clients: a provided function on the npm aws-lambda-ric, and one on sh + curl", async () => {
  // The Node.js Runtime Interface Client from npm, packaged as a user would.
  const ric = join(source, "tests/e2e/node_modules/aws-lambda-ric");
  const code = join(work, "ric-code");
  for (const part of ["package.json", "bin", "dist"])
    cpSync(join(ric, part), join(code, "node_modules/aws-lambda-ric", part), { recursive: true });
  cpSync(join(source, "images/examples/node-hello/index.js"), join(code, "index.js"));
  writeFileSync(join(code, "bootstrap"), "#!/bin/sh\ncd /var/task\nexec /usr/bin/node " +
    "/var/task/node_modules/aws-lambda-ric/bin/index.mjs index.handler\n");
  chmodSync(join(code, "bootstrap"), 0o755);
  await lambda.send(new CreateFunctionCommand({
    FunctionName: "ric", Runtime: "provided", Handler: "bootstrap", Timeout: 20,
    Role: "arn:aws:iam::000000000000:role/thaw", Code: { ZipFile: zipDir(code) },
  }));
  for (const name of ["ric", "again"]) {
    const out = await lambda.send(new InvokeCommand({
      FunctionName: "ric", Payload: Buffer.from(JSON.stringify({ name })),
    }));
    assert.equal(out.FunctionError, undefined, text(out.Payload));
    assert.equal(JSON.parse(text(out.Payload)).message, `hello ${name}`);
  }
  // A bootstrap with nothing but a shell and curl.
  await lambda.send(new CreateFunctionCommand({
    FunctionName: "shell", Runtime: "provided", Handler: "bootstrap", Timeout: 20,
    Role: "arn:aws:iam::000000000000:role/thaw", Code: { ZipFile: zipOf("provided-shell") },
  }));
  const out = await lambda.send(new InvokeCommand({ FunctionName: "shell", Payload: Buffer.from('{"n":1}') }));
  assert.deepEqual(JSON.parse(text(out.Payload)), { echo: { n: 1 }, function: "shell" });
});
