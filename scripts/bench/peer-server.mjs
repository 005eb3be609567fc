// The benchmark's peer: the official TypeScript MCP SDK server (@modelcontextprotocol/sdk),
// Streamable HTTP transport, stateful (one transport and one McpServer per session, the SDK
// README's pattern), with one tool `echo`. Plain node:http, no framework, and the same bearer
// check claudecron does, so both servers do comparable work per request.
//
//   node peer-server.mjs     (env: PEER_PORT, PEER_TOKEN, PEER_NODE_MODULES, PEER_JSON_RESPONSE)
//
// PEER_NODE_MODULES is the node_modules folder the SDK was installed into (the benchmark's cache);
// PEER_JSON_RESPONSE=1 (default) answers POSTs with plain JSON as claudecron does, 0 with SSE.
// Prints "listening on PORT" once it accepts connections. Listens on 127.0.0.1 only.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const modules = process.env.PEER_NODE_MODULES;
if (!modules) throw new Error('PEER_NODE_MODULES is not set');
const load = (p) => import(pathToFileURL(path.join(modules, p)).href);
const { McpServer } = await load('@modelcontextprotocol/sdk/dist/esm/server/mcp.js');
const { StreamableHTTPServerTransport } = await load('@modelcontextprotocol/sdk/dist/esm/server/streamableHttp.js');
const { isInitializeRequest } = await load('@modelcontextprotocol/sdk/dist/esm/types.js');
const { z } = await load('zod/index.js');

const port = Number(process.env.PEER_PORT || 0);
const token = process.env.PEER_TOKEN || '';
const jsonResponse = (process.env.PEER_JSON_RESPONSE ?? '1') !== '0';
const transports = new Map();

function newServer() {
  const server = new McpServer({ name: 'bench-peer', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Echo the text back', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  return server;
}

function reply(res, status, message) {
  const body = JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null });
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const httpServer = http.createServer(async (req, res) => {
  try {
    const url = req.url || '/';
    if (url === '/health') {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 2 });
      return res.end('ok');
    }
    if (url !== '/mcp') return reply(res, 404, 'not found');
    if (token && req.headers.authorization !== `Bearer ${token}`) return reply(res, 401, 'unauthorized');
    const sid = req.headers['mcp-session-id'];
    let body;
    if (req.method === 'POST') {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reply(res, 400, 'parse error');
      }
    }
    let transport = sid ? transports.get(sid) : undefined;
    if (!transport) {
      if (sid || req.method !== 'POST' || !isInitializeRequest(body)) {
        return reply(res, sid ? 404 : 400, sid ? 'unknown session' : 'no session');
      }
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: jsonResponse,
        onsessioninitialized: (id) => transports.set(id, transport),
      });
      transport.onclose = () => {
        if (transport.sessionId) transports.delete(transport.sessionId);
      };
      await newServer().connect(transport);
    }
    await transport.handleRequest(req, res, body);
  } catch (err) {
    console.error(err);
    if (!res.headersSent) reply(res, 500, 'internal error');
  }
});
httpServer.keepAliveTimeout = 120_000;
httpServer.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${httpServer.address().port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
