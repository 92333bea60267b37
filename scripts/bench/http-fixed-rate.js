// SPDX-License-Identifier: Apache-2.0
// The HTTP case's realistic workload (scripts/bench/http.sh): a server that answers 1 KiB after
// about 1 ms, and an open-loop client at a fixed request rate (no tool installed here does that;
// wrk is closed-loop). Latency is measured from each request's scheduled start, so a stall of the
// client or the server shows (no coordinated omission).
//   node http-fixed-rate.js server PORT
//   node http-fixed-rate.js client PORT RATE SECONDS   -> "sent N done M p50_ms X p99_ms Y"
// (the first second is a warm-up: its requests are sent but not measured)
'use strict';
const http = require('http');
const [mode, portArg, rateArg, secondsArg] = process.argv.slice(2);
const port = Number(portArg);

if (mode === 'server') {
	const body = Buffer.alloc(1024, 'x');
	http.createServer((req, res) => {
		req.resume();
		setTimeout(() => {
			res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': body.length});
			res.end(body);
		}, 1);
	}).listen(port, '127.0.0.1', () => console.log('ready'));
} else {
	const rate = Number(rateArg), seconds = Number(secondsArg);
	const agent = new http.Agent({keepAlive: true, maxSockets: 64});
	const lat = [];
	let sent = 0, done = 0;
	const t0 = process.hrtime.bigint();
	const total = rate * seconds;
	const tick = () => {
		const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
		const due = Math.min(total, Math.floor(elapsed * rate));
		while (sent < due) {
			const scheduled = Number(t0) + (sent / rate) * 1e9;
			const counted = sent >= rate; // the first second opens the connections: not measured
			sent++;
			http.get({host: '127.0.0.1', port, path: '/', agent}, (res) => {
				res.resume();
				res.on('end', () => {
					if (counted)
						lat.push((Number(process.hrtime.bigint()) - scheduled) / 1e6);
					if (++done === total) finish();
				});
			}).on('error', () => { if (++done === total) finish(); });
		}
		if (sent < total) setTimeout(tick, 1);
	};
	const finish = () => {
		lat.sort((a, b) => a - b);
		const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(3);
		console.log(`sent ${sent} done ${lat.length} p50_ms ${q(0.5)} p99_ms ${q(0.99)}`);
		process.exit(0);
	};
	tick();
}
