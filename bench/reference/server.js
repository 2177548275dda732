// The reference a Node.js user would run today: seed 004's approach (npm
// `ws`, one process, broadcast in a loop), extended to seed 000's protocol
// (id message, clientKey emptied, sender excluded) plus the `ack` and `seq`
// palaver-bench uses for its in-flight window. Written the idiomatic way,
// without tricks, so the comparison is fair to what people deploy.
//
// Rooms (palaver's issue 16, for `palaver-bench --rooms`): the simplest
// way a Node user adds them -- a Map from room name to a Set of sockets;
// {"type":"create"|"join","room":R,"name":N} puts the socket in R's set and
// answers {"type":"member","action":"joined","user":{"name":N}}, and a
// message that names a room goes to that set (minus its sender) instead
// of to everyone.
'use strict';
const http = require('http');
const crypto = require('crypto');
const { WebSocketServer, WebSocket } = require('ws');

const PORT = Number(process.env.PORT || 3001);
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html' });
  res.end('<!doctype html><title>reference</title>');
});
const wss = new WebSocketServer({
  server,
  handleProtocols: (protocols) => (protocols.has('sample-protocol') ? 'sample-protocol' : false),
});
let seq = 0;
const rooms = new Map(); // room name -> Set of sockets

wss.on('connection', (ws) => {
  ws.on('close', () => {
    if (ws.room) rooms.get(ws.room).delete(ws);
  });
  const id = crypto.randomUUID();
  ws.send(JSON.stringify({ type: 'id', clientKey: id, date: Date.now() }));
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      return;
    }
    if ((msg.type === 'create' || msg.type === 'join') && typeof msg.room === 'string') {
      if (!rooms.has(msg.room)) rooms.set(msg.room, new Set());
      rooms.get(msg.room).add(ws);
      ws.room = msg.room;
      ws.send(JSON.stringify({ type: 'member', action: 'joined', room: msg.room, user: { name: msg.name } }));
      return;
    }
    if (msg.type !== 'message') return;
    msg.clientKey = '';
    msg.seq = ++seq;
    msg.serverDate = Date.now();
    const out = JSON.stringify(msg);
    const to = msg.room && rooms.has(msg.room) ? rooms.get(msg.room) : wss.clients;
    for (const client of to) {
      if (client !== ws && client.readyState === WebSocket.OPEN) client.send(out);
    }
    ws.send(JSON.stringify({ type: 'ack', msgId: msg.msgId, seq: msg.seq }));
  });
});

server.listen(PORT, '127.0.0.1', () => {
  console.log(`reference listening on ${PORT}`);
});
process.on('SIGTERM', () => process.exit(0));
