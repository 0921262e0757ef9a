// nightloop content script, 1 of 4: what the agent sees of a page, and where it is drawn.
// The four files (observation.js, actions.js, recorder.js, content.js) load in that order into
// one isolated world and share `globalThis.nightloopPage`; each runs once however often it is
// injected (the manifest, then chrome.scripting where a page predates the extension). Their
// messages with the service worker are written down in protocol.js ("service worker ↔ content
// script"); the observation format is daemon/core/observation.py.

(() => {
  if (globalThis.nightloopPage) return;


  const MAX_ELEMENTS = 250;   // cap per observation; in-view and interactive elements go first
  const MAX_TEXT = 1500;      // characters of visible text
  const MAX_NAME = 80;
  const MAX_VALUE = 200;
  const MAX_OPTIONS = 30;
  const MASK = "•••";         // what a filled secret field shows instead of its value
  // Payment-card and one-time-code fields (observation.py SECRET_AUTOCOMPLETE, the same rule).
  const SECRET_AUTOCOMPLETE = /^(cc-(number|csc|exp|exp-month|exp-year)|one-time-code)$/;
  // Fields secret by the words of their name (observation.py SECRET_NAME): painted over in
  // screenshots.
  const SECRET_NAME = /\b(password|passcode|card ?number|credit card|cvv|cvc|csc|pin|otp|one[- ]time (code|password)|iban|security code)\b/i;

  const INTERACTIVE = [
    "a[href]", "button", "input:not([type=hidden])", "select", "textarea", "summary",
    "[contenteditable]:not([contenteditable=false])", "[onclick]", "[tabindex]:not([tabindex='-1'])",
    ...["button", "link", "checkbox", "radio", "tab", "menuitem", "option", "switch", "textbox",
      "combobox", "searchbox", "slider", "spinbutton", "treeitem"].map((r) => `[role=${r}]`),
  ].join(",");
  const LABELLED = "h1,h2,h3,h4,h5,h6,[aria-label],img[alt]:not([alt=''])";
  const TEXT_INPUTS = new Set(["text", "search", "email", "url", "tel", "password", "number",
    "date", "datetime-local", "month", "week", "time", ""]);
  // A page's own error messages: visible text in an element with an error-styled class
  // (Django's errorlist, Rails' field_with_errors, Bootstrap's invalid-feedback, …).
  const ERROR_CLASS = /error|^invalid-feedback$|^alert-danger$/i;
  const MAX_ERRORS = 5;
  const MAX_ERROR = 200;

  // Ids stay the same for the same element while the page lives.
  const idOf = new WeakMap();
  const byId = new Map();
  let nextId = 1;

  const formIdOf = new WeakMap();   // forms numbered per page, apart from the element ids
  let nextFormId = 1;

  function formId(form) {
    if (!formIdOf.has(form)) formIdOf.set(form, nextFormId++);
    return formIdOf.get(form);
  }

  function elementId(el) {
    let id = idOf.get(el);
    if (id === undefined) {
      id = nextId++;
      idOf.set(el, id);
      byId.set(id, new WeakRef(el));
    }
    return id;
  }

  const clip = (text, n) => {
    const t = (text || "").replace(/\s+/g, " ").trim();
    return t.length > n ? t.slice(0, n - 1) + "…" : t;
  };

  // -- walking the DOM: documents, open shadow roots, same-origin iframes ---------------------

  function* walk(root, frame, offset) {
    for (const el of root.querySelectorAll("*")) {
      yield { el, frame, offset };
      if (el.shadowRoot) yield* walk(el.shadowRoot, frame || "shadow", offset);
      if (el.tagName === "IFRAME" || el.tagName === "FRAME") {
        let doc = null;
        try {
          doc = el.contentDocument;   // null for cross-origin frames
        } catch {
          doc = null;
        }
        if (doc && doc.documentElement) {
          const r = el.getBoundingClientRect();
          yield* walk(doc, "iframe", { x: offset.x + r.left, y: offset.y + r.top });
        }
      }
    }
  }

  /** A script-driven control without semantics (a span with a click handler, say) usually
   * shows a pointer cursor: count the outermost element that starts one. */
  function looksClickable(el) {
    if (el.childElementCount > 3) return false;   // a container, not a control
    const view = el.ownerDocument.defaultView;
    if (view.getComputedStyle(el).cursor !== "pointer") return false;
    const parent = el.parentElement;
    return !parent || view.getComputedStyle(parent).cursor !== "pointer";
  }

  function isVisible(el, rect) {
    if (rect.width === 0 && rect.height === 0) return false;
    return el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
  }

  function roleOf(el) {
    const explicit = el.getAttribute("role");
    if (explicit) return explicit.split(/\s+/)[0];
    const tag = el.tagName.toLowerCase();
    if (tag === "a") return "link";
    if (tag === "button" || tag === "summary") return "button";
    if (tag === "select") return el.multiple ? "listbox" : "combobox";
    if (tag === "textarea") return "textbox";
    if (/^h[1-6]$/.test(tag)) return "heading";
    if (tag === "img") return "img";
    if (tag === "input") {
      const type = el.type;
      if (type === "checkbox" || type === "radio") return type;
      if (["button", "submit", "reset", "image"].includes(type)) return "button";
      if (type === "range") return "slider";
      if (type === "search") return "searchbox";
      if (type === "number") return "spinbutton";
      return "textbox";
    }
    if (el.isContentEditable) return "textbox";
    if (looksClickable(el)) return "clickable";
    return tag;
  }

  function textById(el, ids) {
    const root = el.getRootNode();
    return ids.split(/\s+/)
      .map((id) => (root.getElementById ? root.getElementById(id) : el.ownerDocument.getElementById(id)))
      .filter(Boolean).map((n) => contentText(n, null, true)).join(" ");
  }

  /** `node`'s text as an accessible name reads it (the name "from content" of the accessible
   * name computation): its text, an image's alt, an embedded field's value (never a secret
   * one's) or a select's chosen option, leaving out `skip` (the control a label names) and, unless `hidden` (a
   * node aria-labelledby points at), what is not rendered. */
  function contentText(node, skip, hidden = false) {
    let out = "";
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) {
        out += child.textContent;
        continue;
      }
      if (child.nodeType !== Node.ELEMENT_NODE || child === skip) continue;
      if (!hidden && (!child.checkVisibility() || child.getAttribute("aria-hidden") === "true")) continue;
      const display = hidden ? "inline" : getComputedStyle(child).display;
      const gap = display.startsWith("inline") ? "" : " ";
      let text;
      if (child.tagName === "IMG") text = child.getAttribute("alt") || "";
      else if (child.tagName === "SELECT") text = child.selectedOptions[0]?.text || "";
      else if (isTextField(child)) text = isFilledSecret(child) ? "" : valueOf(child);   // never a secret
      else if (child.getAttribute("aria-label")) text = child.getAttribute("aria-label");
      else text = contentText(child, skip, hidden);
      out += gap + text + gap;
    }
    return out;
  }

  // The accessible name as the browser computes it, most of it: aria-labelledby, aria-label,
  // the <label>s' text (images by their alt), then the element's own content for the roles that
  // take a name from it, its title, its placeholder last; then a form field's `name`.
  const NEVER_BY_CONTENT = new Set(["textbox", "searchbox", "combobox", "listbox", "spinbutton",
    "slider"]);

  function nameOf(el) {
    const candidates = [
      () => el.getAttribute("aria-labelledby") && textById(el, el.getAttribute("aria-labelledby")),
      () => el.getAttribute("aria-label"),
      () => el.labels && el.labels.length && [...el.labels].map((l) => contentText(l, el)).join(" "),
      () => el.tagName === "IMG" && el.alt,
      () => el.tagName === "INPUT" && ["button", "submit", "reset"].includes(el.type) && (el.value || el.type),
      () => !isTextField(el) && el.tagName !== "SELECT" && !NEVER_BY_CONTENT.has(roleOf(el)) && contentText(el, null),
      () => el.getAttribute("title"),
      () => el.getAttribute("placeholder"),
      () => el.getAttribute("name"),
    ];
    for (const candidate of candidates) {
      const text = clip(candidate(), MAX_NAME);
      if (text) return text;
    }
    return "";
  }

  // Controls the browser's own constraint check flagged (an `invalid` event: a submit with a
  // required field empty, say) since the last action began.
  let flagged = new WeakSet();
  addEventListener("invalid", (event) => flagged.add(event.target), { capture: true });

  /** The page's words for why a control is refused (aria-invalid, or flagged by the browser's
   * check since the last action), or "" when it is not. */
  function refusal(el) {
    if (el.getAttribute("aria-invalid") !== "true" && !flagged.has(el)) return "";
    const ids = el.getAttribute("aria-errormessage") || el.getAttribute("aria-describedby");
    return clip(el.validationMessage || (ids && textById(el, ids)) || "invalid", MAX_ERROR);
  }

  /** `el`'s text when it is one of the page's error messages (see ERROR_CLASS). */
  function errorText(el, interactive) {
    if (interactive || ![...el.classList].some((c) => ERROR_CLASS.test(c))) return "";
    return isVisible(el, el.getBoundingClientRect()) ? clip(el.innerText, MAX_ERROR) : "";
  }

  function isTextField(el) {
    if (el.tagName === "TEXTAREA") return true;
    if (el.tagName === "INPUT") return TEXT_INPUTS.has(el.type);
    return el.isContentEditable;
  }

  function describe(el, frame, offset, rect) {
    const tag = el.tagName.toLowerCase();
    const d = { id: elementId(el), tag, role: roleOf(el), name: nameOf(el) };
    const x = rect.left + offset.x;
    const y = rect.top + offset.y;
    d.in_view = x < innerWidth && y < innerHeight && x + rect.width > 0 && y + rect.height > 0;
    if (frame) d.frame = frame;
    if (tag === "input") d.type = el.type;
    const autocomplete = el.getAttribute("autocomplete");
    if (autocomplete) d.autocomplete = clip(autocomplete.trim().toLowerCase(), MAX_NAME);
    if (isTextField(el)) {
      d.editable = !el.disabled && !el.readOnly;
      // Secret values stay in the page (the daemon also masks fields secret by their name).
      if (el.type === "password" || SECRET_AUTOCOMPLETE.test(d.autocomplete || "")) {
        d.value = el.value ? MASK : "";
      }
      else d.value = clip(el.isContentEditable && tag !== "input" ? el.innerText : el.value, MAX_VALUE);
    }
    if (tag === "input" && (el.type === "checkbox" || el.type === "radio")) d.checked = el.checked;
    else if (el.hasAttribute("aria-checked")) d.checked = el.getAttribute("aria-checked") === "true";
    if (tag === "select") {
      d.options = [...el.options].slice(0, MAX_OPTIONS).map((o) => clip(o.text, MAX_NAME));
      if (el.options.length > MAX_OPTIONS) d.options_omitted = el.options.length - MAX_OPTIONS;
      const chosen = el.selectedOptions[0];
      if (chosen) d.selected = clip(chosen.text, MAX_NAME);
    }
    if (el.disabled || el.getAttribute("aria-disabled") === "true") d.disabled = true;
    const invalid = refusal(el);
    if (invalid) d.invalid = invalid;
    const form = el.form || el.closest("form");     // its form owner (the form= attribute too)
    if (form) d.form = formId(form);
    if ((tag === "a" || tag === "area") && /^https?:$/.test(el.protocol)) d.link_origin = el.origin;
    return d;
  }

  function observe() {
    const found = [];
    const errors = [];
    let order = 0;
    for (const { el, frame, offset } of walk(document, null, { x: 0, y: 0 })) {
      const interactive = el.matches(INTERACTIVE) || looksClickable(el);
      const error = errorText(el, interactive);
      if (error && errors.length < MAX_ERRORS && !errors.some((e) => e.includes(error))) errors.push(error);
      if (!interactive && !el.matches(LABELLED)) continue;
      const rect = el.getBoundingClientRect();
      if (!isVisible(el, rect)) continue;
      const d = describe(el, frame, offset, rect);
      if (!interactive) d.context = true;     // read for what it says, never a target
      // Priority: in view and interactive first, then interactive, then labelled context.
      found.push({ d, order: order++, rank: (d.in_view ? 0 : 2) + (interactive ? 0 : 1) });
    }
    const kept = found.length > MAX_ELEMENTS
      ? [...found].sort((a, b) => a.rank - b.rank || a.order - b.order).slice(0, MAX_ELEMENTS)
        .sort((a, b) => a.order - b.order)
      : found;
    const text = clip(document.body ? document.body.innerText : "", Infinity);
    return {
      url: location.href,
      title: document.title,
      elements: kept.map((k) => k.d),
      text: text.slice(0, MAX_TEXT),
      omitted_elements: found.length - kept.length,
      omitted_text: Math.max(0, text.length - MAX_TEXT),
      ...(errors.length ? { errors } : {}),
    };
  }

  // -- layout: where things are drawn, for a screenshot ------------------------------------------

  /** `el`'s box [x, y, width, height] in the top viewport's CSS pixels. */
  function viewportBox(el) {
    const r = el.getBoundingClientRect();
    let x = r.left;
    let y = r.top;
    for (let view = el.ownerDocument.defaultView; view && view.frameElement; view = view.parent) {
      const frame = view.frameElement.getBoundingClientRect();
      x += frame.left;
      y += frame.top;
    }
    return [x, y, r.width, r.height].map((v) => Math.round(v * 10) / 10);
  }

  function inViewport([x, y, w, h]) {
    return w > 0 && h > 0 && x < innerWidth && y < innerHeight && x + w > 0 && y + h > 0;
  }

  function isFilledSecret(el) {
    if (!isTextField(el) || !el.value) return false;
    const autocomplete = (el.getAttribute("autocomplete") || "").trim().toLowerCase();
    return el.type === "password" || SECRET_AUTOCOMPLETE.test(autocomplete) || SECRET_NAME.test(nameOf(el));
  }

  /** What a screenshot of this moment needs: the viewport's size, the box of every element with
   * an id that is in view, and the boxes to paint over: the `cover` ids (the daemon's secret
   * fields) and every filled password or card field of the page, wherever it is. */
  function layout(cover) {
    const boxes = {};
    for (const [id, ref] of byId) {
      const el = ref.deref();
      if (!el || !el.isConnected) continue;
      const box = viewportBox(el);
      if (inViewport(box)) boxes[id] = box;
    }
    const secrets = new Set(cover.map((id) => byId.get(id)?.deref()).filter((el) => el && el.isConnected));
    for (const { el } of walk(document, null, { x: 0, y: 0 })) {
      if (isFilledSecret(el)) secrets.add(el);
    }
    const hidden = [...secrets].map(viewportBox).filter(inViewport);
    return { width: innerWidth, height: innerHeight, boxes, secrets: hidden };
  }

  function valueOf(el) {
    return el.isContentEditable && el.tagName !== "INPUT" ? el.innerText : el.value;
  }

  /** What a person (and `nightloop episodes show`) reads of an action's target, beside the
   * observation's role and name: its text, a short structural path and a nearby label. */
  function targetDetails(el) {
    const path = [];
    for (let n = el; n && n.nodeType === 1 && path.length < 4; n = n.parentElement) {
      const siblings = n.parentElement ? [...n.parentElement.children].filter((c) => c.tagName === n.tagName) : [n];
      path.unshift(siblings.length > 1 ? `${n.tagName.toLowerCase()}[${siblings.indexOf(n) + 1}]` : n.tagName.toLowerCase());
    }
    const near = el.labels && el.labels.length ? el.labels[0]
      : el.closest("label") || el.previousElementSibling;
    return {
      text: isTextField(el) ? "" : clip(el.innerText || el.textContent, MAX_NAME),
      path: path.join(" > "),
      label: near ? clip(near.innerText || near.textContent, MAX_NAME) : "",
    };
  }

  /** A new action begins: forget what the browser's check flagged before it. */
  function forgetFlags() {
    flagged = new WeakSet();
  }

  globalThis.nightloopPage = {
    MASK, INTERACTIVE, byId, idOf, clip, elementId, isTextField, looksClickable, roleOf, valueOf,
    targetDetails, observe, layout, forgetFlags,
  };
})();
