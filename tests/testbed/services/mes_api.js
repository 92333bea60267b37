// SPDX-License-Identifier: Apache-2.0
// MES API: production jobs, plus the worker that turns order events into jobs. Node.js with `pg`
// and `amqplib` from npm. Not instrumented in any way.
//
// The worker consumes mes.orders with manual acks: a well-formed order event becomes a job in
// MES DB and is acked; a malformed one is rejected with requeue=false, so that RabbitMQ routes it
// through the queue's x-dead-letter-exchange to mes.orders.dlq. In slow mode (MES_SLOW_MS, or
// PUT /admin/slow?ms=N at run time) each message is held unacked that long after its job is written:
// the "messages in flight" of the plan.
'use strict';

const http = require('http');
const amqp = require('amqplib');
const { Pool } = require('pg');
const { reply, serve } = require('./faults');

// Same topology as services/topology.py (the Shop API declares it too).
const EXCHANGE = 'shop.orders';
const ROUTING_KEY = 'order.created';
const QUEUE = 'mes.orders';
const DLX = 'shop.orders.dlx';
const DLQ = 'mes.orders.dlq';

const pool = new Pool({ connectionString: process.env.MES_DB_URL, max: 8 });
const state = { consuming: false, slowMs: Number(process.env.MES_SLOW_MS || 0),
  acked: 0, rejected: 0, held: 0 };

function wellFormed(event) {
  return event && event.type === 'order.created'
    && Number.isInteger(event.order_id) && Number.isInteger(event.product_id)
    && Number.isInteger(event.quantity) && event.quantity > 0;
}

async function onMessage(channel, msg) {
  let event = null;
  try { event = JSON.parse(msg.content.toString()); } catch (e) { event = null; }
  if (!wellFormed(event)) {
    channel.reject(msg, false);
    state.rejected += 1;
    return;
  }
  try {
    await pool.query(
      'INSERT INTO jobs (order_id, product_id, quantity) VALUES ($1, $2, $3) '
      + 'ON CONFLICT (order_id) DO NOTHING', [event.order_id, event.product_id, event.quantity]);
  } catch (e) {
    // MES DB is down or refusing: give the message back for a later try, do not dead-letter it.
    setTimeout(() => channel.nack(msg, false, true), 1000);
    return;
  }
  if (state.slowMs > 0) {
    state.held += 1;
    setTimeout(() => {
      state.held -= 1;
      channel.ack(msg);
      state.acked += 1;
    }, state.slowMs);
  } else {
    channel.ack(msg);
    state.acked += 1;
  }
}

async function startWorker() {
  for (;;) {
    try {
      const conn = await amqp.connect(process.env.AMQP_URL);
      const channel = await conn.createChannel();
      await channel.assertExchange(EXCHANGE, 'direct', { durable: true });
      await channel.assertExchange(DLX, 'fanout', { durable: true });
      await channel.assertQueue(DLQ, { durable: true });
      await channel.bindQueue(DLQ, DLX, '');
      await channel.assertQueue(QUEUE, { durable: true, arguments: { 'x-dead-letter-exchange': DLX } });
      await channel.bindQueue(QUEUE, EXCHANGE, ROUTING_KEY);
      await channel.prefetch(Number(process.env.MES_PREFETCH || 200));
      await channel.consume(QUEUE, (msg) => { if (msg) onMessage(channel, msg); }, { noAck: false });
      state.consuming = true;
      console.log('mes worker consuming', QUEUE);
      await new Promise((resolve) => { conn.on('close', resolve); conn.on('error', () => {}); });
      state.consuming = false;
      state.held = 0;
    } catch (e) {
      state.consuming = false;
      console.error('mes worker:', e.message);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function router(req, res, url) {
  const path = url.pathname;
  let m;
  if (req.method === 'GET' && path === '/healthz') {
    return reply(res, state.consuming ? 200 : 503, { consuming: state.consuming });
  }
  if (req.method === 'GET' && path === '/stats') return reply(res, 200, state);
  if (req.method === 'PUT' && path === '/admin/slow') {
    state.slowMs = Math.max(0, Number(url.searchParams.get('ms') || 0));
    return reply(res, 200, { slowMs: state.slowMs });
  }
  if (req.method === 'GET' && path === '/jobs') {
    const r = await pool.query(
      'SELECT id, order_id, product_id, quantity, status, created_at FROM jobs ORDER BY id DESC LIMIT 50');
    return reply(res, 200, r.rows);
  }
  if (req.method === 'GET' && (m = path.match(/^\/jobs\/(\d+)$/))) {
    const r = await pool.query(
      'SELECT id, order_id, product_id, quantity, status, created_at FROM jobs WHERE id = $1', [Number(m[1])]);
    return r.rows[0] ? reply(res, 200, r.rows[0]) : reply(res, 404, { error: 'no such job' });
  }
  return reply(res, 404, { error: 'not found' });
}

const server = http.createServer(serve(router));
server.keepAliveTimeout = 30000;
server.listen(Number(process.env.MES_API_PORT), '127.0.0.1', () => {
  console.log(`mes-api listening on 127.0.0.1:${process.env.MES_API_PORT}`);
});
startWorker();
