const http = require('http');
const crypto = require('crypto');

exports.handler = async (event) => {
  const name = (event && event.name) || 'world';
  return { message: `hello ${name}`, nodeHasHttp: typeof http.request === 'function', sha: crypto.createHash('sha256').update(name).digest('hex').slice(0, 8) };
};
