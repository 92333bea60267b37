// SPDX-License-Identifier: Apache-2.0
// Fault injection shared by the Node.js services; the same contract as faults.py:
//   X-Fail-Share: 0.2 (or ?fail_share=0.2)  answer 500 with that probability, before any side effect
//   X-Delay-Ms: 150   (or ?delay_ms=150)    sleep that long before answering
//   X-Cpu-Ms: 20      (or ?cpu_ms=20)       burn that much CPU (busy loop) before answering
'use strict';

function number(value) {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

function decide(req, url) {
  const share = number(req.headers['x-fail-share'] ?? url.searchParams.get('fail_share'));
  const delayMs = number(req.headers['x-delay-ms'] ?? url.searchParams.get('delay_ms'));
  const cpuMs = number(req.headers['x-cpu-ms'] ?? url.searchParams.get('cpu_ms'));
  return { fail: Math.random() < share, delayMs, cpuMs };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function burn(ms) {
  const end = process.cpuUsage().user + ms * 1000;
  while (process.cpuUsage().user < end) { /* busy on purpose: the CPU alert's load */ }
}

function reply(res, status, obj) {
  const body = Buffer.from(JSON.stringify(obj));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try {
        const raw = Buffer.concat(chunks).toString();
        resolve(raw ? JSON.parse(raw) : {});
      } catch (e) {
        reject(Object.assign(e, { status: 400 }));
      }
    });
    req.on('error', reject);
  });
}

// Runs one request through fault injection and the router; turns thrown errors into 400/500.
function serve(router) {
  return async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const { fail, delayMs, cpuMs } = decide(req, url);
    try {
      if (delayMs > 0) await sleep(delayMs);
      if (cpuMs > 0) burn(cpuMs);
      if (fail) return reply(res, 500, { error: 'injected failure' });
      await router(req, res, url);
    } catch (e) {
      if (!res.headersSent) reply(res, e.status || 500, { error: String(e.message || e) });
    }
  };
}

module.exports = { reply, readJson, serve, sleep };
