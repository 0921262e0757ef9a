// A skills page: renders the page of ?template=&seed= (/api/skill) and records, for the tab,
// what the user's actions leave (the ground truth the `sites.state` probe reads under the
// site name "skills"): every control's value, each submit, presses (menu items included), row
// actions (once a dialog confirmed them, where the page asks).

(async () => {
  const KEY = "nightloop.site.skills";
  const query = new URLSearchParams(location.search);
  const template = query.get("template"), seed = query.get("seed");
  let saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
  if (!saved || saved.template !== template || String(saved.seed) !== seed) {
    const reply = await fetch(`/api/skill?template=${encodeURIComponent(template)}&seed=${encodeURIComponent(seed)}`);
    if (!reply.ok) {
      document.body.textContent = `No such skills page: ${await reply.text()}`;
      return;
    }
    const page = await reply.json();
    const values = Object.fromEntries(page.controls.map((c) => [c.key, c.value]));
    saved = { template, seed, page, state: { values, submitted: [], pressed: [], acted: [] } };
  }
  const { page, state } = saved;
  const save = () => sessionStorage.setItem(KEY, JSON.stringify(saved));
  save();

  const esc = (text) => String(text).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const uid = () => `k${Math.random().toString(36).slice(2, 8)}`;
  const TYPES = { text: "text", email: "email", tel: "tel", number: "number", date: "date",
                  time: "time", password: "password", search: "search" };

  /** A control's HTML, labelled the page's way; its element carries data-key. */
  function control(c) {
    const value = state.values[c.key];
    const id = uid(), key = `data-key="${c.key}"`;
    if (c.kind === "radio") {
      return `<fieldset ${key}><legend>${esc(c.label)}</legend>${c.options.map((o) =>
        `<label><input type="radio" name="${id}" value="${esc(o)}" ${o === value ? "checked" : ""}> ${esc(o)}</label>`).join(" ")}</fieldset>`;
    }
    let field;
    const named = c.naming === "aria" ? `aria-label="${esc(c.label)}"` : "";
    if (c.kind === "select") {
      field = `<select id="${id}" ${key} ${named}>${c.options.map((o) =>
        `<option ${o === value ? "selected" : ""}>${esc(o)}</option>`).join("")}</select>`;
    } else if (c.kind === "textarea") {
      const hint = c.naming === "placeholder" ? `placeholder="${esc(c.label)}"` : "";
      field = `<textarea id="${id}" ${key} ${named} ${hint}>${esc(value)}</textarea>`;
    } else if (c.kind === "editable") {
      return `<p><span aria-hidden="true">${esc(c.label)}</span> <span contenteditable="true" role="textbox" aria-label="${esc(c.label)}" ${key}>${esc(value)}</span></p>`;
    } else if (c.kind === "checkbox" || c.kind === "switch") {
      const role = c.kind === "switch" ? 'role="switch"' : "";
      field = `<input type="checkbox" ${role} id="${id}" ${key} ${value ? "checked" : ""}>`;
      return c.naming === "wrap" ? `<p><label>${field} ${esc(c.label)}</label></p>`
        : `<p>${field} <label for="${id}">${esc(c.label)}</label></p>`;
    } else {
      const hint = c.naming === "placeholder" ? `placeholder="${esc(c.label)}"` : "";
      field = `<input type="${TYPES[c.kind]}" id="${id}" ${key} ${named} ${hint} value="${esc(value)}">`;
    }
    if (c.naming === "wrap") return `<p><label>${esc(c.label)} ${field}</label></p>`;
    if (c.naming === "aria") return `<p><span aria-hidden="true">${esc(c.label)}</span> ${field}</p>`;
    if (c.naming === "placeholder") return `<p>${field}</p>`;
    return `<p><label for="${id}">${esc(c.label)}</label> ${field}</p>`;
  }

  function laidOut(controls) {
    if (page.layout === "grid") return `<div class="grid">${controls.map(control).join("")}</div>`;
    if (page.layout === "table") {
      return `<table>${controls.map((c) => `<tr><td>${control(c)}</td></tr>`).join("")}</table>`;
    }
    if (page.layout === "fieldsets" && controls.length > 1) {
      const half = Math.ceil(controls.length / 2);
      return `<fieldset><legend>Details</legend>${controls.slice(0, half).map(control).join("")}</fieldset>` +
        `<fieldset><legend>More</legend>${controls.slice(half).map(control).join("")}</fieldset>`;
    }
    return controls.map(control).join("");
  }

  let tab = page.tabs[0], step = 1, menuOpen = false;
  const gone = new Set();             // rows acted on
  const FILLER = "This page is part of a small example site. Read the notes below before you go on; " +
    "nothing here needs an answer, and the form further down keeps what you enter until you leave.";

  function render() {
    let shown = page.tabs.length ? page.controls.filter((c) => page.tab_of[c.key] === tab) : page.controls;
    const wizard = page.second.length > 0, last = !wizard || step === 2;
    if (wizard) shown = shown.filter((c) => page.second.includes(c.key) === (step === 2));
    const app = document.getElementById("app");
    app.innerHTML = `
      ${page.banner ? `<div class="banner" role="region" aria-label="Cookies">We use cookies to remember your choices. <button type="button" data-dismiss>Accept all</button> <button type="button" data-dismiss>Reject</button></div>` : ""}
      ${page.nav.length ? `<header><nav>${page.nav.map((n) => `<a href="#" data-press="${esc(n)}">${esc(n)}</a>`).join(" ")}</nav></header>` : ""}
      <main><h1>${esc(page.title)}</h1>
      ${page.menu ? `<div class="menu"><button type="button" aria-haspopup="menu" aria-expanded="${menuOpen}" data-menu>${esc(page.menu)}</button>${menuOpen ? `<div role="menu">${page.menu_items.map((m) => `<button type="button" role="menuitem" data-press="${esc(m)}">${esc(m)}</button>`).join("")}</div>` : ""}</div>` : ""}
      ${Array.from({ length: page.filler }, () => `<p class="filler">${FILLER}</p>`).join("")}
      ${page.tabs.length ? `<div role="tablist">${page.tabs.map((t) => `<button type="button" role="tab" aria-selected="${t === tab}" data-tab="${esc(t)}">${esc(t)}</button>`).join("")}</div>` : ""}
      ${page.rows.length ? `<ul class="row-list">${page.rows.map((r, i) => gone.has(i) ? "" : `<li>${esc(r)} <button type="button" data-row="${i}" ${i % 2 ? `aria-label="${esc(page.row_action)} ${esc(r)}">${esc(page.row_action)}` : `>${esc(page.row_action)} ${esc(r)}`}</button></li>`).join("")}</ul>` : ""}
      ${page.controls.length || !page.rows.length ? `<form novalidate>${laidOut(shown)}
        ${wizard ? `<p>Step ${step} of 2</p>` : ""}
        <p>${wizard && step === 2 ? `<button type="button" data-step="1">Previous</button>` : ""}
        ${!last ? `<button type="button" data-step="2">Next</button>` : page.controls.length ? `<button type="submit">${esc(page.submit)}</button>` : ""}
        ${page.buttons.map((b) => `<button type="button" data-press="${esc(b)}">${esc(b)}</button>`).join(" ")}</p>
      </form>` : ""}
      <p class="status" role="status"></p></main>
      ${page.footer.length ? `<footer>${page.footer.map((f) => `<a href="#" data-press="${esc(f)}">${esc(f)}</a>`).join(" ")}</footer>` : ""}`;
    document.title = page.title;
  }

  /** The value a control holds now, as the state records it. */
  function read(el) {
    if (el.tagName === "FIELDSET") return el.querySelector("input:checked")?.value ?? "";
    if (el.tagName === "SELECT") return el.selectedOptions[0]?.text ?? "";
    if (el.type === "checkbox") return el.checked;
    if (el.isContentEditable) return el.innerText.trim();
    return el.value;
  }

  function record() {
    for (const el of document.querySelectorAll("[data-key]")) state.values[el.dataset.key] = read(el);
    save();
  }

  const app = document.getElementById("app");
  app.addEventListener("input", record);
  app.addEventListener("change", record);
  app.addEventListener("click", (event) => {
    const el = event.target.closest("[data-press], [data-tab], [data-row], [data-dismiss], " +
      "[data-menu], [data-step], [data-answer]");
    if (!el) return;
    event.preventDefault();
    if (el.dataset.dismiss !== undefined) el.closest(".banner").remove();
    if (el.dataset.press) state.pressed.push(el.dataset.press);
    if (el.dataset.row) {
      const row = Number(el.dataset.row);
      if (page.confirm) ask(row);
      else act(row);
    }
    if (el.dataset.answer) {
      el.closest("[role=dialog]").remove();
      if (el.dataset.answer !== "no") act(Number(el.dataset.answer));
    }
    if (el.dataset.tab || el.dataset.step || el.dataset.menu !== undefined ||
        el.getAttribute("role") === "menuitem") {
      record();
      if (el.dataset.tab) tab = el.dataset.tab;
      if (el.dataset.step) step = Number(el.dataset.step);
      menuOpen = el.dataset.menu !== undefined && !menuOpen;
      render();
    }
    save();
  });
  /** Act on row `i`: recorded, and the row leaves the list. */
  function act(i) {
    state.acted.push([page.row_action, page.rows[i]]);
    gone.add(i);
    app.querySelector(`[data-row="${i}"]`)?.closest("li").remove();
  }

  /** Ask in a dialog before acting on row `i`. */
  function ask(i) {
    const what = `${page.row_action} ${page.rows[i]}?`;
    app.insertAdjacentHTML("beforeend", `<div role="dialog" aria-modal="true" aria-label="${esc(what)}" class="dialog">
      <p>${esc(what)} This cannot be undone.</p>
      <button type="button" data-answer="no">Cancel</button> <button type="button" data-answer="${i}">${esc(page.confirm)}</button></div>`);
  }

  app.addEventListener("submit", (event) => {
    event.preventDefault();
    record();
    state.submitted.push({ ...state.values });
    save();
    if (page.after === "page") {
      app.innerHTML = `<main><h1>Thank you</h1><p>We have your ${esc(page.title.toLowerCase())} details.</p></main>`;
      document.title = `Done — ${page.title}`;
    } else {
      app.querySelector("[role=status]").textContent = "Saved. Thank you!";
    }
  });
  render();
  document.documentElement.dataset.siteReady = "yes";
})();
