// The extension's side of the nightloop wire protocol, version 1.
// daemon/protocol.py is the source of truth (it validates every frame); these typedefs mirror it.
// Every frame is a JSON object with a `type`; replies echo the request's `request_id`.

export const PROTOCOL_VERSION = 1;
export const DEFAULT_PORT = 8977;
export const AGENT = `nightloop-extension/${chrome.runtime.getManifest().version}`;

/** @typedef {"toolbar"|"cli"|"eval"|"practice"|"demonstration"|"replay"} Source */

// -- extension → daemon -------------------------------------------------------------------
/** @typedef {{type: "hello", protocol: number, token: string, client: "extension", agent?: string}} Hello */
/** @typedef {{type: "task", task: string, source?: Source, url?: string, tab_id?: number, request_id?: string}} Task */
/** @typedef {{type: "stop", episode_id?: number, request_id?: string}} Stop */
/** @typedef {{type: "feedback", episode_id: number, value: 1|-1, request_id?: string}} Feedback */
/** @typedef {{type: "status", request_id?: string}} StatusRequest */
/** @typedef {{type: "observation", request_id: string, tab_id?: number, observation?: Observation, error?: string}} ObservationReply */
/** @typedef {{type: "action_result", request_id: string, ok: boolean, tab_id?: number, error?: string, detail?: object}} ActionResult */
/** @typedef {{type: "probe_result", request_id: string, ok: boolean, tab_id?: number, result?: object, error?: string}} ProbeResult */
/** @typedef {{type: "ping"}} Ping */
/** Ask (no `allowed`) or set a practice rule; the daemon answers with every field set.
 * @typedef {{type: "practice", site?: string, episode_id?: number, allowed?: boolean, task?: string, request_id?: string}} Practice */

// -- daemon → extension -------------------------------------------------------------------
/** @typedef {{type: "welcome", protocol: number, daemon: string, episode?: Episode}} Welcome */
/** @typedef {{type: "observe", request_id: string, tab_id?: number}} Observe */
/** `allow_submit` false (practice on a site not marked safe): the page must submit no form.
 * @typedef {{type: "act", request_id: string, action: Action, tab_id?: number, allow_submit?: boolean}} Act */
/** Run a named probe of probes.js (or "tab.close"); used by benchmark harnesses.
 * @typedef {{type: "probe", request_id: string, tab_id: number, probe: string, args?: object}} Probe */
/** @typedef {{type: "episode", episode: Episode, request_id?: string}} EpisodeUpdate */
/** @typedef {{type: "step", episode_id: number, step: Step}} StepUpdate */
/** @typedef {{type: "status", request_id?: string, address: string, db: string, browser_connected: boolean, episode?: Episode, counts: object}} Status */
/** @typedef {{type: "pong"}} Pong */
/** @typedef {{type: "error", message: string, request_id?: string}} ErrorMessage */

// -- records ------------------------------------------------------------------------------
/**
 * An action, flat: {action: "fill", id: 4, text: "Ada"}. The table of actions and their
 * arguments is daemon/actions.py; content.js performs the "page" ones, service_worker.js the
 * "tab" ones (goto, go_back).
 * @typedef {{action: string, id?: number, text?: string, option?: string, key?: string,
 *            direction?: "up"|"down", url?: string}} Action
 */
/**
 * @typedef {{id: number, tag: string, role: string, name: string, type?: string, value?: string,
 *            checked?: boolean, options?: string[], selected?: string, editable?: boolean,
 *            disabled?: boolean, in_view: boolean, frame?: "iframe"|"shadow"}} Element
 * @typedef {{url: string, title: string, elements: Element[], text: string,
 *            omitted_elements: number, omitted_text: number}} Observation
 */
/**
 * @typedef {{id: number, task: string, source: Source, status: string, start_url?: string,
 *            final_answer?: string, error?: string, n_steps: number}} Episode
 * @typedef {{index: number, action?: Action, ok: boolean, error?: string, url?: string}} Step
 */

/** Messages between the popup and the service worker (inside the extension only). */
export const POPUP = Object.freeze({
  RUN: "run",            // {task, url?}
  STOP: "stop",
  FEEDBACK: "feedback",  // {episode_id, value}
  PAIR: "pair",          // {port, token}
  RECORD: "record",      // {task}: record the user doing it in the current tab
  RECORD_STOP: "record_stop",  // {success}: save the demonstration
  REPLAY: "replay",      // {episode_id}: run a finished episode again without the model
  RESUME: "resume",      // {episode_id}: the user did what a paused replay asked
  PRACTICE: "practice",  // {site | episode_id, allowed?}: ask or set a practice rule
});

/** True for pages the agent can work in (not the browser's or an extension's own pages). */
export function isWebUrl(url) {
  return /^(https?|file):/.test(url || "");
}

/** The web tab the user looked at last: the agent's default tab. */
export async function lastWebTab() {
  const tabs = (await chrome.tabs.query({})).filter((t) => isWebUrl(t.url));
  tabs.sort((a, b) => (b.lastAccessed || 0) - (a.lastAccessed || 0));
  return tabs[0] || null;
}
