// The strongest reference: uWebSockets (npm `uwebsockets` 3.0.6, a
// republish of uWebSockets.js whose binary runs on Debian 12's glibc),
// speaking the same protocol as server.js -- seed 000's (id message,
// clientKey emptied, sender excluded) plus the `ack` and `seq`
// palaver-bench uses for its in-flight window. Fanout is uWS's own
// pub/sub: every connection subscribes to one topic and a message is
// published from the sender's socket, which uWS skips (sender excluded).
//
// maxBackpressure is raised to 1 GiB and closeOnBackpressureLimit is off:
// with uWS's defaults (64 KiB, drop) a subscriber that falls behind
// silently misses messages, which would make its throughput look better
// than a broker that delivers everything. Like this, uWS buffers for a
// slow reader, as palaverd does up to --max-backlog, and the bench's gap
// counter stays honest.
//
// Rooms (for `palaver-bench --rooms`): a topic per room, uWS's own way; a
// socket in a room leaves the everyone-topic, and a message naming a room
// is published to that room's topic.
'use strict';
const crypto = require('crypto');
const uWS = require('uwebsockets');

const PORT = Number(process.env.PORT || 3002);
const TOPIC = 'chat';
let seq = 0;

uWS.App()
  .ws('/*', {
    compression: uWS.DISABLED,
    maxPayloadLength: 64 * 1024,
    maxBackpressure: 1024 * 1024 * 1024,
    closeOnBackpressureLimit: false,
    idleTimeout: 120,
    upgrade: (res, req, context) => {
      const offered = (req.getHeader('sec-websocket-protocol') || '').split(',').map((s) => s.trim());
      res.upgrade({}, req.getHeader('sec-websocket-key'),
        offered.includes('sample-protocol') ? 'sample-protocol' : '',
        req.getHeader('sec-websocket-extensions'), context);
    },
    open: (ws) => {
      ws.subscribe(TOPIC);
      ws.send(JSON.stringify({ type: 'id', clientKey: crypto.randomUUID(), date: Date.now() }));
    },
    message: (ws, data, isBinary) => {
      if (isBinary) return;
      let msg;
      try {
        msg = JSON.parse(Buffer.from(data).toString());
      } catch {
        return;
      }
      if ((msg.type === 'create' || msg.type === 'join') && typeof msg.room === 'string') {
        ws.unsubscribe(TOPIC);
        ws.subscribe(`room:${msg.room}`);
        ws.send(JSON.stringify({ type: 'member', action: 'joined', room: msg.room, user: { name: msg.name } }));
        return;
      }
      if (msg.type !== 'message') return;
      msg.clientKey = '';
      msg.seq = ++seq;
      msg.serverDate = Date.now();
      // everyone subscribed but ws
      ws.publish(typeof msg.room === 'string' ? `room:${msg.room}` : TOPIC, JSON.stringify(msg));
      ws.send(JSON.stringify({ type: 'ack', msgId: msg.msgId, seq: msg.seq }));
    },
  })
  .get('/*', (res) => {
    res.writeHeader('Content-Type', 'text/html').end('<!doctype html><title>uws reference</title>');
  })
  .listen('127.0.0.1', PORT, (token) => {
    if (!token) {
      console.error(`uws reference: cannot listen on ${PORT}`);
      process.exit(1);
    }
    console.log(`uws reference listening on ${PORT}`);
  });
process.on('SIGTERM', () => process.exit(0));
