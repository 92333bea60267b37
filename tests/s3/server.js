// SPDX-License-Identifier: Apache-2.0
// S3-compatible server for the S3 collector's integration test: @20minutes/s3rver (a maintained
// fork of s3rver that verifies SigV4 signatures; s3rver 3.x accepts any V4 signature) on
// 127.0.0.1, an ephemeral port, a fresh directory, one access key pair, and buckets filled with
// objects of sizes chosen here. It prints what it stored, one line per fact, then "ready":
//   port=<n>
//   bucket=<name> objects=<count> bytes=<sum of sizes>
// and serves until stdin closes or it gets SIGTERM. Lines on stdin: "revoke" invalidates the
// key pair (as a key rotation on the server would), "restore" brings it back; each answers "ok".
// Usage: node --openssl-legacy-provider server.js <directory> <access key id> <secret key>
// (s3rver encrypts its continuation tokens with DES, which OpenSSL 3 keeps in its legacy
// provider: without the flag every second page fails.)
'use strict';

const { Readable } = require('stream');
const S3rver = require('@20minutes/s3rver');
const AWSAccount = require('@20minutes/s3rver/lib/models/account');
const S3Object = require('@20minutes/s3rver/lib/models/object');

const [directory, accessKeyId, secretAccessKey] = process.argv.slice(2);
if (!directory || !accessKeyId || !secretAccessKey) {
  console.error('usage: server.js <directory> <access key id> <secret key>');
  process.exit(2);
}

// Sizes are deterministic but irregular. ListObjectsV2 pages hold at most 1,000 keys, so the
// 1,234 keys of `many` take two requests joined by a continuation token.
const BUCKETS = {
  many: Array.from({ length: 1234 }, (_, i) => (i * 7919) % 3001),  // includes 0-byte objects
  few: [1, 1048576, 123457],
  empty: [],
};
// Keys that need URI- and XML-escaping on the way back.
const keyName = (bucket, i) => (bucket === 'few' ? ['a b.txt', 'dir/ü&<x>.bin', 'plus+eq=.dat'][i] : `obj/${String(i).padStart(5, '0')}`);

async function main() {
  const account = AWSAccount.DUMMY_ACCOUNT;
  account.revokeAccessKey('S3RVER');  // only the test's key pair is valid
  account.createKeyPair(accessKeyId, secretAccessKey);

  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: Object.keys(BUCKETS).map((name) => ({ name })),
  });
  const { port } = await server.run();

  for (const [bucket, sizes] of Object.entries(BUCKETS)) {
    let bytes = 0;
    for (let i = 0; i < sizes.length; i++) {
      const content = Buffer.alloc(sizes[i], i & 0xff);
      // A stream, not a Buffer: the store resolves a Buffer write before it reaches the disk.
      await server.store.putObject(
        new S3Object(bucket, keyName(bucket, i), Readable.from([content]), {
          'content-type': 'application/octet-stream',
        }),
      );
      bytes += sizes[i];
    }
    process.stdout.write(`bucket=${bucket} objects=${sizes.length} bytes=${bytes}\n`);
  }
  process.stdout.write(`port=${port}\nready\n`);

  const stop = () => server.close().finally(() => process.exit(0));
  let pending = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const cmd = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (cmd === 'revoke') account.revokeAccessKey(accessKeyId);
      else if (cmd === 'restore') account.createKeyPair(accessKeyId, secretAccessKey);
      else continue;
      process.stdout.write('ok\n');
    }
  });
  process.stdin.on('end', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
