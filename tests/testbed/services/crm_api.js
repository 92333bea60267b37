// SPDX-License-Identifier: Apache-2.0
// CRM API: customers and their orders. Node.js, plain `http` and `pg` from npm. The plan has no
// CRM database, so customers live in database `crm` on the Shop DB instance; orders are read from
// (and placed through) the Shop API over HTTP, so that there is service-to-service client traffic.
// Not instrumented in any way. Fault injection: see faults.js.
'use strict';

const http = require('http');
const { Pool } = require('pg');
const { reply, readJson, serve } = require('./faults');

const pool = new Pool({ connectionString: process.env.CRM_DB_URL, max: 8 });
const shopAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const shopPort = Number(process.env.SHOP_API_PORT);

function callShop(method, path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = http.request({
      host: '127.0.0.1', port: shopPort, method, path, agent: shopAgent,
      headers: Object.assign(data ? { 'Content-Type': 'application/json',
        'Content-Length': data.length } : {}, headers),
      timeout: 10000,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        let parsed = null;
        try { parsed = JSON.parse(Buffer.concat(chunks).toString()); } catch (e) { parsed = null; }
        resolve({ status: res.statusCode, body: parsed });
      });
    });
    req.on('timeout', () => req.destroy(new Error('shop-api timeout')));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

async function customer(id) {
  const r = await pool.query('SELECT id, name, email FROM customers WHERE id = $1', [id]);
  return r.rows[0];
}

async function router(req, res, url) {
  const path = url.pathname;
  let m;
  if (req.method === 'GET' && path === '/healthz') return reply(res, 200, { status: 'ok' });
  if (req.method === 'GET' && path === '/customers') {
    const r = await pool.query('SELECT id, name, email FROM customers ORDER BY id LIMIT 100');
    return reply(res, 200, r.rows);
  }
  if (req.method === 'POST' && path === '/customers') {
    const body = await readJson(req);
    if (!body.name) return reply(res, 400, { error: 'name required' });
    const r = await pool.query(
      'INSERT INTO customers (name, email) VALUES ($1, $2) RETURNING id, name, email',
      [body.name, body.email || null]);
    return reply(res, 201, r.rows[0]);
  }
  if ((m = path.match(/^\/customers\/(\d+)$/)) && req.method === 'GET') {
    const c = await customer(Number(m[1]));
    return c ? reply(res, 200, c) : reply(res, 404, { error: 'no such customer' });
  }
  if ((m = path.match(/^\/customers\/(\d+)\/orders$/))) {
    const c = await customer(Number(m[1]));
    if (!c) return reply(res, 404, { error: 'no such customer' });
    if (req.method === 'GET') {
      const shop = await callShop('GET', `/orders?customer_id=${c.id}`);
      if (shop.status !== 200) return reply(res, 502, { error: `shop-api answered ${shop.status}` });
      return reply(res, 200, { customer: c, orders: shop.body });
    }
    if (req.method === 'POST') {
      const body = await readJson(req);
      const headers = req.headers['x-poison-event'] ? { 'X-Poison-Event': req.headers['x-poison-event'] } : {};
      const shop = await callShop('POST', '/orders', {
        customer_id: c.id, product_id: body.product_id, quantity: body.quantity || 1,
      }, headers);
      if (shop.status !== 201) return reply(res, 502, { error: `shop-api answered ${shop.status}` });
      return reply(res, 201, shop.body);
    }
  }
  return reply(res, 404, { error: 'not found' });
}

const server = http.createServer(serve(router));
server.keepAliveTimeout = 30000;
server.listen(Number(process.env.CRM_API_PORT), '127.0.0.1', () => {
  console.log(`crm-api listening on 127.0.0.1:${process.env.CRM_API_PORT}`);
});
