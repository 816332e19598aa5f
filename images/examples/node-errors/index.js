exports.echo = async (event) => event;

exports.context = async (event, context) => ({
  awsRequestId: context.awsRequestId,
  functionName: context.functionName,
  functionVersion: context.functionVersion,
  memoryLimitInMB: context.memoryLimitInMB,
  invokedFunctionArn: context.invokedFunctionArn,
  logGroupName: context.logGroupName,
  logStreamName: context.logStreamName,
  remainingMs: context.getRemainingTimeInMillis(),
});

exports.environment = async () => process.env;

exports.callback = (event, context, callback) => {
  setTimeout(() => callback(null, { via: 'callback', got: event }), 5);
};

exports.callbackError = (event, context, callback) => callback(new TypeError('bad input'));

exports.throws = async () => {
  console.log('about to fail');
  throw new RangeError('out of range');
};

exports.exitEarly = async () => process.exit(4);

exports.eatMemory = async () => {
  const hog = [];
  for (;;) hog.push(Buffer.alloc(16 << 20, 1));
};

exports.sleepForever = () => new Promise(() => setTimeout(() => {}, 3600 * 1000));
