// The network guard practice runs under: browser-wide declarativeNetRequest session rules that
// block every request that could change a server's state (any method but GET, HEAD, OPTIONS),
// from any tab, frame, worker or form, except to the sites the daemon names.
//
// The rules live in the browser's network stack, so they hold from a tab's first request: a tab
// the extension has just opened is covered before anything in it runs. Session rules end with
// the browser; `sites` null lifts them.

const RULE_BLOCK = 1;
const RULE_ALLOW = 2;
const WRITES = ["post", "put", "patch", "delete", "connect", "other"];

/** Escape RE2's special characters in a literal. */
function literal(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * @param {string[]|null} sites host[:port] names, lower case, that may be sent to; null: no guard
 * @returns {Promise<{guarded: boolean, sites: string[]}>}
 */
export async function guardNetwork(sites) {
  const addRules = [];
  if (sites != null) {
    // without resourceTypes a rule skips main_frame: a top-level form POST would pass
    const condition = {
      requestMethods: WRITES,
      resourceTypes: Object.values(chrome.declarativeNetRequest.ResourceType),
    };
    addRules.push({ id: RULE_BLOCK, priority: 1, action: { type: "block" }, condition });
    if (sites.length) {
      addRules.push({
        id: RULE_ALLOW, priority: 2, action: { type: "allow" },
        condition: { ...condition, regexFilter: `^https?://(${sites.map(literal).join("|")})/` },
      });
    }
  }
  await chrome.declarativeNetRequest.updateSessionRules({
    removeRuleIds: [RULE_BLOCK, RULE_ALLOW], addRules,
  });
  return { guarded: sites != null, sites: sites || [] };
}
