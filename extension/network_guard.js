// The network guard practice runs under: browser-wide declarativeNetRequest session rules that
// block every request that could change a server's state (any method but GET, HEAD, OPTIONS),
// from any tab, frame, worker or form, except to the sites the daemon names.
//
// The rules live in the browser's network stack, so they hold from a tab's first request: a tab
// the extension has just opened is covered before anything in it runs. Session rules end with
// the browser (a harness browser, practice's own); a later call replaces them.

const RULE_BLOCK = 1;
const RULE_ALLOW = 2;
const WRITES = ["post", "put", "patch", "delete", "connect", "other"];

/** Escape RE2's special characters in a literal. */
function literal(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * @param {string[]} sites host[:port] names, lower case, that may still be sent to
 * @returns {Promise<{sites: string[]}>}
 */
export async function guardNetwork(sites) {
  if (!Array.isArray(sites)) throw new Error("network.guard needs args.sites, a list of sites");
  // without resourceTypes a rule skips main_frame: a top-level form POST would pass
  const condition = {
    requestMethods: WRITES,
    resourceTypes: Object.values(chrome.declarativeNetRequest.ResourceType),
  };
  const addRules = [{ id: RULE_BLOCK, priority: 1, action: { type: "block" }, condition }];
  if (sites.length) {
    addRules.push({
      id: RULE_ALLOW, priority: 2, action: { type: "allow" },
      condition: { ...condition, regexFilter: `^https?://(${sites.map(literal).join("|")})/` },
    });
  }
  await chrome.declarativeNetRequest.updateSessionRules({
    removeRuleIds: [RULE_BLOCK, RULE_ALLOW], addRules,
  });
  return { sites };
}
