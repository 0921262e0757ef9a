// The WebSocket link to the local daemon: pairing, the hello, keepalive, reconnecting with
// backoff, and the daemon's messages routed to the tabs (observe, act, probe) and the popup's
// state (episode, step, approval_ask, practice, fits, night, adapter, secrets).

import { AGENT, DEFAULT_PORT, PROTOCOL_VERSION } from "./protocol.js";
import { onApprovalAsk, onEpisode, onNight, onPractice, onStep, setState } from "./state.js";
import { act, observe, probe } from "./tabs.js";

const MAX_BACKOFF_MS = 30_000;
const KEEPALIVE_MS = 20_000;     // a message every 20 s keeps an MV3 worker (and the socket) alive

let socket = null;
let backoffMs = 500;
let reconnectTimer = null;
let keepaliveTimer = null;
let opening = null;              // the connect() in progress, so that callers share it

async function pairing() {
  const { pasted } = await chrome.storage.session.get("pasted");
  if (pasted?.token) return { port: pasted.port || DEFAULT_PORT, token: pasted.token };
  try {
    const response = await fetch(chrome.runtime.getURL("pairing.json"));
    if (response.ok) return await response.json();
  } catch {
    // no pairing.json: the user pairs from the popup
  }
  return null;
}

export function send(message) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify(message));
  return true;
}

export function connect() {
  opening = opening || open().finally(() => { opening = null; });
  return opening;
}

async function open() {
  if (socket && socket.readyState <= WebSocket.OPEN) return;   // CONNECTING or OPEN
  clearTimeout(reconnectTimer);
  const pair = await pairing();
  if (!pair) {
    await setState({ connection: "unpaired" });
    return;
  }
  await setState({ connection: "connecting", address: `127.0.0.1:${pair.port}` });
  const ws = new WebSocket(`ws://127.0.0.1:${pair.port}/`);
  socket = ws;
  ws.onopen = () => send({
    type: "hello", protocol: PROTOCOL_VERSION, token: pair.token, client: "extension", agent: AGENT,
  });
  ws.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      console.warn("nightloop: daemon sent a frame that is not JSON");
      return;
    }
    onDaemonMessage(message).catch((err) => console.error("nightloop:", err));
  };
  ws.onclose = (event) => {
    if (socket !== ws) return;   // a socket we already replaced
    socket = null;
    clearInterval(keepaliveTimer);
    const refused = event.code === 1008;
    setState({
      connection: refused ? "refused" : "disconnected",
      ...(refused ? { lastError: event.reason } : {}),
    });
    reconnectTimer = setTimeout(connect, backoffMs);
    backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
  };
}

async function onDaemonMessage(message) {
  switch (message.type) {
    case "welcome":
      backoffMs = 500;
      clearInterval(keepaliveTimer);
      keepaliveTimer = setInterval(() => send({ type: "ping" }), KEEPALIVE_MS);
      await setState({ connection: "connected", lastError: null, daemon: message.daemon });
      if (message.episode) await onEpisode(message.episode);
      askNight();
      break;
    case "observe":
      send(await observe(message));
      break;
    case "act":
      send(await act(message));
      break;
    case "probe":
      send(await probe(message));
      break;
    case "episode":
      await onEpisode(message.episode, message.notice || null);
      break;
    case "step":
      await onStep(message.episode_id, message.step);
      break;
    case "approval_ask":
      await onApprovalAsk(message);
      break;
    case "error":
      await setState({ lastError: message.message, lastErrorCode: message.code || null });
      break;
    case "secrets":
      await setState({ secretNames: message.names || [] });
      break;
    case "practice":
      await onPractice(message);
      break;
    case "fits":
      await setState({ fits: message });
      break;
    case "night":
      await onNight(message);
      break;
    case "adapter":       // the popup's Undo went through: the panel shows the night anew
      askNight();
      break;
    case "pong":
    case "status":
      break;
    default:
      console.warn("nightloop: unknown message type from the daemon:", message.type);
  }
}

/** Ask the daemon what the last night did (the answer goes to the popup's state and badge). */
export function askNight() {
  return send({ type: "night", request_id: `night-${Date.now()}` });
}

/** A new token was pasted: close the socket (it reconnects with the token), or connect. */
export function repair() {
  if (socket) socket.close();
  else connect();
}
