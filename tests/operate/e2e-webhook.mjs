// SPDX-License-Identifier: Apache-2.0
// Alertmanager webhook receiver for the end-to-end test: every POST is appended to argv[3] as one
// JSON line {path, receivedAt, body}. Listens on 127.0.0.1:argv[2].
import fs from "node:fs";
import http from "node:http";

const [port, out] = [Number(process.argv[2]), process.argv[3]];
http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => { body += c; });
  req.on("end", () => {
    try {
      fs.appendFileSync(out, JSON.stringify({ path: req.url, receivedAt: new Date().toISOString(), body: JSON.parse(body) }) + "\n");
      res.writeHead(200).end("ok\n");
    } catch (e) { res.writeHead(400).end(String(e)); }
  });
}).listen(port, "127.0.0.1", () => console.log(`webhook receiver on 127.0.0.1:${port} -> ${out}`));
