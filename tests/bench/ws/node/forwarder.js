'use strict';
// forwarder.js: the do-it-yourself host of the WebSocket benchmark. A Node `ws` server
// (npm) that starts one child process per connection and forwards over pipes: each
// WebSocket message goes to the child's stdin as a line, each line of the child's stdout
// goes back as a message. No auth, no event log, no persistence: what a team would write
// instead of a host. The child is the benchmark's pipe_echo (the echo agent's logic).
//
// usage: node forwarder.js PORT CHILD   (listens on 127.0.0.1; stops on SIGTERM or SIGINT)
const { spawn } = require('child_process');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
const child = process.argv[3];
if (!port || !child) {
  console.error('usage: node forwarder.js PORT CHILD');
  process.exit(2);
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has('agenthost.v1') ? 'agenthost.v1' : false),
});
let children = 0, failures = 0;

wss.on('connection', (ws) => {
  const agent = spawn(child, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  let pending = '';
  children++;
  agent.stdout.setEncoding('utf8');
  agent.stdout.on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      ws.send(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
  agent.stdin.on('error', () => {}); // the child died: its exit closes the socket
  agent.on('exit', (code, signal) => {
    children--;
    if (ws.readyState === ws.OPEN) {
      failures++;
      console.error(`forwarder: child ended (${code ?? signal}) with its connection open`);
      ws.close(1011, 'agent ended');
    }
  });
  ws.on('message', (data) => agent.stdin.write(data.toString() + '\n'));
  ws.on('close', () => agent.stdin.end());
  ws.on('error', () => agent.kill());
});

wss.on('listening', () => console.error(`forwarder: listening on 127.0.0.1:${port}`));
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    console.error(`forwarder: stopping (${children} children, ${failures} failures)`);
    for (const ws of wss.clients) ws.terminate();
    wss.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
