/*! answerdesk chat widget (Apache-2.0)
 * <script src="https://HOST/widget.js" data-answerdesk-url="https://HOST" async></script>
 * Options (data-*): answerdesk-url, title, greeting, storage (session | local | none),
 * position (right | left), open, user-token (a signed-in user's token from the host site's server;
 * window.answerdeskIdentity = "TOKEN" works too, also set later). Whether an answer is shown as unsure is the server's decision
 * (its calibrated confidence against its threshold), never the page's.
 * Everything the server sends is untrusted: it becomes DOM nodes and text, never parsed HTML,
 * and only http(s) URLs become links. */
(() => {
  "use strict";
  if (window.answerdesk) return; // the tag was included twice

  const me = document.currentScript || document.querySelector("script[data-answerdesk-url]");
  const cfg = (me && me.dataset) || {};
  const BASE = (() => {
    const raw = cfg.answerdeskUrl || (me && me.src ? me.src.replace(/\/[^/]*$/, "") : location.origin);
    const u = new URL(raw, location.href);
    return (u.origin + u.pathname).replace(/\/+$/, "");
  })();
  const TITLE = cfg.title || "Ask the docs";
  const GREETING = cfg.greeting || "Ask a question about this documentation. Answers cite the pages they come from.";
  const KEY = "answerdesk:" + BASE;
  const NARROW = "(max-width: 480px)";
  const ICONS = {
    chat: "M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z",
    close: "M18 6L6 18M6 6l12 12",
    send: "M22 2L11 13M22 2l-7 20-4-9-9-4 20-7z",
    up: "M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3",
    down: "M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17",
  };

  // -- storage: the conversation survives page navigations on the same site --------------------
  const store = (() => {
    if (cfg.storage === "none") return null;
    try {
      const s = cfg.storage === "local" ? window.localStorage : window.sessionStorage;
      s.setItem(KEY + ":probe", "1");
      s.removeItem(KEY + ":probe");
      return s;
    } catch (e) {
      return null; // storage disabled: the conversation lives as long as the page
    }
  })();
  // sid: the session token the server hands out with the first answer. A conversation belongs to
  // whoever started it, so the token goes back with every request about it (rate, escalate, continue).
  let state = { cid: null, sid: null, open: false, items: [] };
  try {
    const saved = store && JSON.parse(store.getItem(KEY));
    if (saved && Array.isArray(saved.items)) state = saved;
  } catch (e) { /* a corrupt entry starts a new conversation */ }
  const save = () => {
    state.items = state.items.slice(-40);
    try { if (store) store.setItem(KEY, JSON.stringify(state)); } catch (e) { /* quota: keep going */ }
  };

  // -- DOM helpers -----------------------------------------------------------------------------
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of kids) if (c != null) e.append(c);
    return e;
  }
  function icon(name) {
    const ns = "http://www.w3.org/2000/svg";
    const s = document.createElementNS(ns, "svg");
    s.setAttribute("viewBox", "0 0 24 24");
    s.setAttribute("aria-hidden", "true");
    s.setAttribute("focusable", "false");
    const p = document.createElementNS(ns, "path");
    p.setAttribute("d", ICONS[name]);
    s.append(p);
    return s;
  }
  function safeUrl(u) {
    try {
      const x = new URL(String(u)); // relative URLs throw: they would resolve against the host page
      return x.protocol === "https:" || x.protocol === "http:" ? x.href : null;
    } catch (e) {
      return null;
    }
  }
  function link(href, text, label) {
    const a = h("a", { href, "aria-label": label, title: label }, text);
    if (new URL(href).origin !== location.origin) {
      a.target = "_blank";
      a.rel = "noopener noreferrer";
    } else {
      // Same site: follow in this tab; the conversation comes along. On a phone, land on the page.
      a.addEventListener("click", () => { if (matchMedia(NARROW).matches) { state.open = false; save(); } });
    }
    return a;
  }

  // -- Markdown, the small safe subset answers use: fences, lists, headings, quotes, tables, --
  // -- paragraphs; inline code, **bold**, *em*, [text](url), autolinks and [n] citations. --
  const INLINE = /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)|\[([^\]\n]+)\]\(([^()\s]+)(?:\s+"[^"\n]*")?\)|\[(\d{1,3})\]|\*\*([^*\n]+)\*\*|\*([^*\s](?:[^*\n]*[^*\s])?)\*|<(https?:\/\/[^>\s]+)>|(https?:\/\/[^\s<>"'()]*[^\s<>"'().,;:!?])/g;

  function inline(text, cites, out) {
    out = out || document.createDocumentFragment();
    let last = 0;
    for (const m of text.matchAll(INLINE)) {
      if (m.index > last) out.append(text.slice(last, m.index));
      last = m.index + m[0].length;
      if (m[1]) out.append(h("code", { text: m[2] }));
      else if (m[3]) {
        const href = safeUrl(m[4]);
        out.append(href ? link(href, m[3]) : m[3]);
      } else if (m[5]) out.append(citation(Number(m[5]), cites));
      else if (m[6]) out.append(inline(m[6], cites, h("strong")));
      else if (m[7]) out.append(inline(m[7], cites, h("em")));
      else {
        const href = safeUrl(m[8] || m[9]);
        out.append(href ? link(href, m[8] || m[9]) : m[0]);
      }
    }
    if (last < text.length) out.append(text.slice(last));
    return out;
  }

  function citation(n, cites) {
    if (!cites) return h("span", { class: "cite", text: "[" + n + "]" }); // still streaming
    const c = cites.find((x) => x.n === n);
    const href = c && safeUrl(c.url);
    if (!c) return "[" + n + "]";
    if (!href) return h("span", { class: "cite", title: c.title, text: "[" + n + "]" });
    const a = link(href, "[" + n + "]", "Source " + n + ": " + c.title);
    a.className = "cite";
    return a;
  }

  const BLOCK = /^(\s*(`{3,}|~{3,})|#{1,6}\s|\s*([-*+]|\d{1,3}[.)])\s+|>|\|)/;

  function markdown(text, cites) {
    const out = document.createDocumentFragment();
    const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if (!line.trim()) { i++; continue; }
      if ((m = line.match(/^\s*(`{3,}|~{3,})/))) {
        const fence = m[1];
        const code = [];
        for (i++; i < lines.length && !lines[i].trim().startsWith(fence); i++) code.push(lines[i]);
        i++;
        out.append(h("pre", { tabindex: "0" }, h("code", { text: code.join("\n") })));
      } else if ((m = line.match(/^(#{1,6})\s+(.*)$/))) {
        out.append(inline(m[2].replace(/\s#+\s*$/, ""), cites, h("p", { class: "h" })));
        i++;
      } else if (/^\s*([-*+]|\d{1,3}[.)])\s+/.test(line)) {
        const ordered = /^\s*\d/.test(line);
        const list = h(ordered ? "ol" : "ul");
        while (i < lines.length && lines[i].trim()) {
          const item = lines[i].match(/^\s*([-*+]|\d{1,3}[.)])\s+(.*)$/);
          if (item) list.append(inline(item[2], cites, h("li")));
          else if (list.lastChild) list.lastChild.append(" ", inline(lines[i].trim(), cites));
          i++;
        }
        out.append(list);
      } else if (line.startsWith(">")) {
        const quoted = [];
        for (; i < lines.length && lines[i].startsWith(">"); i++) quoted.push(lines[i].replace(/^>\s?/, ""));
        out.append(h("blockquote", null, markdown(quoted.join("\n"), cites)));
      } else if (line.startsWith("|")) {
        const rows = [];
        for (; i < lines.length && lines[i].startsWith("|"); i++) {
          if (!/^\|[\s:|-]+\|?\s*$/.test(lines[i])) rows.push(lines[i].replace(/^\||\|\s*$/g, "").split("|"));
        }
        const table = h("table");
        rows.forEach((cells, r) => table.append(h("tr", null, ...cells.map((c) => inline(c.trim(), cites, h(r ? "td" : "th"))))));
        out.append(h("div", { class: "table", tabindex: "0" }, table));
      } else {
        const para = [];
        for (; i < lines.length && lines[i].trim() && (!para.length || !BLOCK.test(lines[i])); i++) para.push(lines[i].trim());
        out.append(inline(para.join(" "), cites, h("p")));
      }
    }
    return out;
  }

  // -- the widget ----------------------------------------------------------------------------
  const host = h("div", { id: "answerdesk-widget" });
  const root = host.attachShadow({ mode: "open" });
  const css = `
:host{all:initial}
*{box-sizing:border-box}
[hidden]{display:none!important}
.wrap{position:fixed;z-index:2147483000;right:20px;bottom:20px;display:flex;flex-direction:column;align-items:flex-end;gap:12px;
 font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328}
.wrap.left{right:auto;left:20px;align-items:flex-start}
button{font:inherit;color:inherit;cursor:pointer}
svg{width:18px;height:18px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}
.bubble{width:56px;height:56px;border-radius:50%;border:0;background:#0b57d0;color:#fff;display:grid;place-items:center;
 box-shadow:0 4px 14px rgba(0,0,0,.25)}
.bubble svg{width:26px;height:26px}
.panel{width:min(400px,calc(100vw - 24px));height:min(600px,calc(100vh - 110px));background:#fff;border:1px solid #d0d7de;
 border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.2);display:flex;flex-direction:column;overflow:hidden}
header{display:flex;align-items:center;justify-content:space-between;padding:8px 8px 8px 16px;background:#0b57d0;color:#fff}
h2{font-size:16px;margin:0;font-weight:600}
.icon{background:none;border:0;padding:7px;border-radius:6px;display:grid;place-items:center}
.log{flex:1;overflow-y:auto;padding:12px 14px;display:flex;flex-direction:column;gap:10px;overscroll-behavior:contain}
.msg{overflow-wrap:anywhere}
.user{align-self:flex-end;background:#0b57d0;color:#fff;padding:8px 12px;border-radius:12px 12px 2px 12px;max-width:85%}
.user p{margin:0;white-space:pre-wrap}
.bot{background:#f6f8fa;border:1px solid #e1e4e8;border-radius:12px 12px 12px 2px;padding:10px 12px}
.bot.unsure{border-color:#d4a72c;background:#fff8e5}
.banner{font-size:13px;margin-bottom:8px;color:#6a4a00}
.body p{margin:0 0 8px}
.body>:last-child{margin-bottom:0}
.h{font-weight:600}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:rgba(27,31,36,.08);padding:1px 4px;border-radius:4px}
pre{background:#1f2328;color:#f6f8fa;padding:8px 10px;border-radius:6px;overflow-x:auto;margin:0 0 8px}
pre code{background:none;padding:0;color:inherit}
ul,ol{margin:0 0 8px;padding-left:22px}
blockquote{margin:0 0 8px;padding-left:10px;border-left:3px solid #d0d7de;color:#57606a}
.table{overflow-x:auto;margin-bottom:8px}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:left}
a{color:#0b57d0}
.cite{font-size:.8em;font-weight:600;text-decoration:none;white-space:nowrap}
a.cite:hover{text-decoration:underline}
.caret{display:inline-block;width:7px;height:1em;margin-left:2px;background:currentColor;vertical-align:text-bottom;
 animation:blink 1s steps(2) infinite}
@keyframes blink{50%{opacity:0}}
.label{font-size:12px;font-weight:600;color:#57606a;margin:10px 0 2px}
.sources{font-size:13px;margin:0;padding-left:22px}
.row{display:flex;align-items:center;gap:2px;margin-top:6px}
.thumb{color:#57606a}
.thumb[aria-pressed=true]{color:#0b57d0;background:#ddf4ff}
.thanks{font-size:12px;color:#57606a;margin-left:6px}
.comment{display:flex;gap:6px;margin-top:6px}
textarea{font:inherit;color:inherit;border:1px solid #8c959f;border-radius:8px;padding:8px 10px;background:#fff}
.comment textarea{flex:1;font-size:13px;padding:6px 8px;resize:vertical}
.comment button{border:1px solid #8c959f;background:#fff;border-radius:8px;padding:0 12px;font-size:13px}
.note{font-size:13px;color:#57606a;margin:0}
.error{color:#b42318}
.support{background:#eef4ff;border:1px solid #b6cdf5;border-radius:12px 12px 12px 2px;padding:10px 12px}
.support p{margin:0;white-space:pre-wrap}.support .label{margin-top:0}
.support .answer{border:1px solid #8c959f;background:#fff;border-radius:8px;padding:4px 12px;margin:6px 6px 0 0}
.support .answer[aria-pressed=true]{border-color:#0b57d0;color:#0b57d0;background:#ddf4ff}
.handoff{background:#e9f7ef;color:#1a5e33;padding:8px 10px;border-radius:8px}
.handoff p{margin:0}.contact{margin:6px 0 0;padding-left:18px}.contact a{color:inherit;font-weight:600}
.reach{display:flex;flex-direction:column;gap:6px;margin-top:8px;font-size:13px}
.reach input[type=email]{font:inherit;border:1px solid #8c959f;border-radius:8px;padding:6px 8px}
.reach input[readonly]{background:#f6f8fa;color:#57606a}
.reach .go{align-self:flex-start;border:0;background:#0b57d0;color:#fff;border-radius:8px;padding:6px 12px}
.ask{display:flex;gap:8px;padding:10px;border-top:1px solid #d0d7de}
.ask textarea{flex:1;resize:none;min-height:42px;max-height:120px}
.send{border:0;background:#0b57d0;color:#fff;border-radius:8px;width:44px;display:grid;place-items:center}
.send:disabled{opacity:.5;cursor:progress}
footer{display:flex;gap:14px;align-items:center;padding:4px 12px 8px;font-size:12px;color:#57606a}
.link{background:none;border:0;padding:2px 0;color:#0b57d0;text-decoration:underline;font-size:inherit}
.brand{margin-left:auto}
:focus-visible{outline:3px solid #1f6feb;outline-offset:2px}
header :focus-visible,.user :focus-visible{outline-color:#fff}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:480px){.wrap{right:12px;bottom:12px}.wrap.left{left:12px}
 .panel{position:fixed;inset:0;width:auto;height:auto;border:0;border-radius:0}:host(.open) .bubble{display:none}}
@media (prefers-reduced-motion:reduce){.caret{animation:none}}
`;
  if (root.adoptedStyleSheets && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
    const sheet = new CSSStyleSheet(); // not subject to the host page's CSP style-src
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [sheet];
  } else {
    root.append(h("style", { text: css }));
  }

  const bubble = h("button", {
    class: "bubble", type: "button", "aria-label": "Ask a question about these docs", "aria-expanded": "false",
    "aria-controls": "adk-panel", onclick: () => toggle(),
  }, icon("chat"));
  const log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  const input = h("textarea", {
    id: "adk-q", rows: "1", maxlength: "4000", placeholder: "Ask a question…", autocomplete: "off",
    onkeydown: (e) => { if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); } },
    oninput: () => { input.style.height = "auto"; input.style.height = input.scrollHeight + 2 + "px"; },
  });
  const send = h("button", { class: "send", type: "submit", "aria-label": "Send question" }, icon("send"));
  const human = h("button", { class: "link", type: "button", onclick: () => offerHandoff() }, "Talk to a human");
  const panel = h("section", {
    class: "panel", id: "adk-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "adk-title", hidden: true,
  },
  h("header", null,
    h("h2", { id: "adk-title", text: TITLE }),
    h("button", { class: "icon", type: "button", "aria-label": "Close chat", onclick: () => toggle(false) }, icon("close"))),
  log,
  h("form", { class: "ask", onsubmit: (e) => { e.preventDefault(); submit(); } },
    h("label", { class: "sr", for: "adk-q", text: "Your question" }), input, send),
  h("footer", null, human,
    h("button", { class: "link", type: "button", onclick: () => reset() }, "New conversation"),
    h("span", { class: "brand", text: "answerdesk" })));
  panel.addEventListener("keydown", (e) => { if (e.key === "Escape") { e.stopPropagation(); toggle(false); } });
  root.append(h("div", { class: "wrap" + (cfg.position === "left" ? " left" : "") }, panel, bubble));

  function toggle(open = panel.hidden, focus = true) {
    panel.hidden = !open;
    bubble.setAttribute("aria-expanded", String(open));
    host.classList.toggle("open", open);
    state.open = open;
    save();
    if (open) { log.scrollTop = log.scrollHeight; fetchReplies(); }
    // Focus follows the user's action; a panel restored on page load must not steal it.
    if (focus) (open ? input : bubble).focus();
  }

  function reset() {
    state = { cid: null, sid: state.sid, open: true, items: [] }; // the session stays: it is who this visitor is
    save();
    redraw();
    input.focus();
  }

  function redraw() {
    log.replaceChildren(h("p", { class: "note", text: GREETING }));
    for (const item of state.items) {
      log.append(item.r === "u" ? userView(item.t) : item.r === "h" ? handoffView(item.id, item.opts, item.to)
        : item.r === "s" ? supportView(item) : botView(item).node);
    }
    human.hidden = !state.cid;
  }

  const userView = (text) => h("div", { class: "msg user" }, h("p", { text }));
  const handoffView = (id, opts, to) => h("div", { class: "note handoff", role: "status" },
    h("p", null, "A person from the support team will follow up. Your reference: ", h("code", { text: id })),
    to ? h("p", { class: "emailed", text: "We will email the answer to " + to + "." }) : null,
    optionsView(opts));
  // Other ways to reach a human, configured per plan (e.g. book a call): links the server chose.
  const contactUrl = (u) => (/^mailto:/i.test(String(u)) ? String(u) : safeUrl(u));
  const optionsView = (opts) => {
    const usable = (opts || []).filter((o) => contactUrl(o.url));
    return usable.length ? h("ul", { class: "contact" }, ...usable.map((o) => h("li", null,
      link(contactUrl(o.url), o.label), o.description ? h("span", { text: " — " + o.description }) : null))) : "";
  };
  // The support team's reply from the ticket (plain text, never markup), and for a resolved ticket the
  // question whether it solved the problem.
  function supportView(item) {
    const node = h("div", { class: "msg support", role: "status" },
      h("p", { class: "label", text: item.kind === "resolved" ? "Support team" : (item.by || "Support team") + " replied" }),
      h("p", { text: item.t }));
    if (item.kind === "resolved" && item.tok) {
      const status = h("span", { class: "thanks", role: "status" });
      const answer = (solved, label) => h("button", {
        class: "answer", type: "button", "aria-pressed": String(item.solved === solved),
        onclick: async () => {
          try {
            await post("/v1/ratings/" + encodeURIComponent(item.tok), { solved });
            item.solved = solved;
            save();
            for (const b of node.querySelectorAll(".answer")) b.setAttribute("aria-pressed", String(b === buttons[solved ? 0 : 1]));
            status.textContent = "Thanks, noted.";
          } catch (err) {
            log.append(errorView(err));
          }
        },
      }, label);
      const buttons = [answer(true, "Yes, solved"), answer(false, "No")];
      node.append(h("div", { class: "row" }, ...buttons, status));
    }
    return node;
  }

  // Replies arrive in the ticket after the visitor left: fetched whenever the panel opens.
  async function fetchReplies() {
    if (!state.cid) return;
    try {
      const res = await fetch(BASE + "/v1/conversations/" + encodeURIComponent(state.cid) + "/replies",
        { credentials: "omit", headers: headers("application/json") });
      if (!res.ok) return;
      const seen = new Set(state.items.filter((i) => i.r === "s").map((i) => i.id));
      const fresh = (await res.json()).filter((r) => !seen.has(r.id));
      for (const r of fresh) {
        const item = { r: "s", id: r.id, t: r.text, kind: r.kind, by: r.author, tok: r.rating_token, solved: r.solved };
        state.items.push(item);
        log.append(supportView(item));
      }
      if (fresh.length) { save(); log.scrollTop = log.scrollHeight; }
    } catch (e) { /* offline: the replies come next time */ }
  }

  // While the panel is open on a conversation that went to a human, look again now and then (not SSE:
  // one small GET every 30 s, only in that case).
  const withHuman = () => state.items.some((i) => i.r === "h" || i.eid);
  setInterval(() => { if (!panel.hidden && state.cid && withHuman()) fetchReplies(); }, 30000);

  const mark = (name) => { try { performance.mark("answerdesk:" + name); } catch (e) { /* old browsers */ } };
  const nearBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 80;

  function botView(bot) {
    const body = h("div", { class: "body" });
    const node = h("article", { class: "msg bot", "data-state": bot.mid ? "done" : "streaming", "aria-label": "Answer" }, body);
    let queued = false;
    const render = () => {
      queued = false;
      const stick = nearBottom();
      body.replaceChildren(markdown(bot.text, bot.cites));
      if (!bot.mid) body.append(h("span", { class: "caret", "aria-hidden": "true" }));
      if (stick) log.scrollTop = log.scrollHeight;
    };
    const update = () => { if (!queued) { queued = true; requestAnimationFrame(render); } };
    const done = () => {
      render();
      node.dataset.state = "done";
      // The server escalated it for low confidence: one decision, the same as the API's and Slack's.
      const unsure = (bot.flags || []).includes("low_confidence");
      if (unsure || bot.eid) {
        node.classList.toggle("unsure", unsure);
        const note = h("div", { class: "banner", role: "note" }, h("strong", { text: unsure ? "Not sure. " : "Passed on. " }),
          unsure ? "The documentation may not answer this. " : "");
        if (bot.eid) {
          note.append("The support team has it — reference ", h("code", { text: bot.eid }), ".", optionsView(bot.handoff));
          if (bot.to) note.append(h("p", { class: "emailed", text: "We will email the answer to " + bot.to + "." }));
          else note.append(contactForm("Email me the answer", async (body) => {
            await post("/v1/escalations/" + encodeURIComponent(bot.eid) + "/contact", body);
            bot.to = body.contact_email || null;
            save();
            return bot.to ? h("p", { class: "emailed", text: "We will email the answer to " + bot.to + "." }) : "";
          }));
        } else note.append(h("button", { class: "link", type: "button", onclick: () => offerHandoff() }, "Talk to a human"));
        node.prepend(note);
      }
      const sources = (bot.cites || []).filter((c) => safeUrl(c.url));
      if (sources.length) {
        node.append(h("p", { class: "label", text: "Sources" }),
          h("ol", { class: "sources" }, ...sources.map((c) => h("li", { value: c.n }, link(safeUrl(c.url), c.title)))));
      }
      node.append(feedbackView(bot));
    };
    if (bot.mid) done(); else update();
    return { node, update, done };
  }

  function feedbackView(bot) {
    const status = h("span", { class: "thanks", role: "status" });
    const comment = h("textarea", { rows: "2", maxlength: "2000", "aria-label": "Comment (optional)" });
    // Hiding the form would drop the focus on the page body: give it back to the chosen thumb.
    const close = () => { form.hidden = true; form.parentNode.querySelector(".thumb[aria-pressed=true]").focus(); };
    const form = h("form", { class: "comment", hidden: true, onsubmit: async (e) => {
      e.preventDefault();
      if (!comment.value.trim()) return close();
      if (await rate(bot, bot.rating, comment.value.trim())) { status.textContent = "Thanks, comment sent."; close(); }
    } }, comment, h("button", { type: "submit", text: "Send" }));
    const thumb = (rating, label) => h("button", {
      class: "icon thumb " + rating, type: "button", "aria-label": label, "aria-pressed": String(bot.rating === rating),
      onclick: async (e) => {
        const row = e.currentTarget.parentNode; // read before the await: currentTarget is then gone
        if (!(await rate(bot, rating))) return;
        for (const b of row.querySelectorAll(".thumb")) b.setAttribute("aria-pressed", String(b.classList.contains(rating)));
        status.textContent = "Thanks for the feedback.";
        comment.placeholder = rating === "down" ? "What was missing or wrong?" : "Anything to add?";
        form.hidden = false;
        comment.focus();
      },
    }, icon(rating));
    return h("div", { class: "actions" },
      h("div", { class: "row" }, thumb("up", "Helpful answer"), thumb("down", "Not helpful"), status), form);
  }

  const SESSION = "X-Answerdesk-Session";
  const USER = "X-Answerdesk-User";
  function headers(accept) {
    const out = { "Content-Type": "application/json", Accept: accept };
    if (typeof state.sid === "string" && state.sid) out[SESSION] = state.sid;
    const token = userToken();
    if (token) out[USER] = token;
    return out;
  }
  // A signed-in user: the token the host site's server signed (see docs/widget.md). Only the server can
  // check it; here it merely prefills the e-mail address at handoff, which the server takes from the
  // verified token anyway (a bad token makes the visitor community, who types an address instead).
  function userToken() {
    const t = window.answerdeskIdentity;
    const v = typeof t === "string" ? t : (t && typeof t.token === "string" ? t.token : cfg.userToken);
    return typeof v === "string" && /^[\w-]+\.[\w-]+\.[\w-]+$/.test(v) && v.length <= 4096 ? v : "";
  }
  function signedEmail() {
    try {
      const part = userToken().split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0))));
      return typeof claims.email === "string" ? claims.email : "";
    } catch (e) {
      return "";
    }
  }

  // "Email me the answer": an address (the signed-in user's, read-only) and an explicit consent box.
  // Without the box ticked no address is sent. `send(body)` returns what replaces the form.
  let forms = 0;
  function contactForm(label, send) {
    const id = "adk-mail-" + ++forms;
    const known = signedEmail();
    const mail = h("input", { id, type: "email", maxlength: "254", autocomplete: "email", placeholder: "you@example.com",
      value: known || null, readonly: Boolean(known) });
    const consent = h("input", { type: "checkbox", class: "consent" });
    const go = h("button", { class: "go", type: "submit", text: label });
    const status = h("p", { class: "note", role: "status" });
    const form = h("form", { class: "reach", onsubmit: async (e) => {
      e.preventDefault();
      const to = mail.value.trim();
      if (consent.checked && !mail.checkValidity()) { status.textContent = "Please enter a valid e-mail address."; mail.focus(); return; }
      if (consent.checked && !to) { status.textContent = "Enter the address to email the answer to."; mail.focus(); return; }
      go.disabled = true;
      try {
        form.replaceWith(await send(consent.checked ? { contact_email: to, notify: true } : {}));
      } catch (err) {
        status.textContent = err.message;
      } finally {
        go.disabled = false;
      }
    } },
    h("label", { for: id, text: "Email me the answer" }), mail,
    h("label", null, consent, " Yes, email me when the support team answers. My address is used for this request only."),
    go, status);
    return form;
  }

  function offerHandoff() {
    if (!state.cid || root.querySelector("form.handoff-offer")) return;
    const form = contactForm("Send to the support team", async (body) => {
      const esc = await post("/v1/escalations", { conversation_id: state.cid, ...body });
      const item = { r: "h", id: esc.id, opts: esc.handoff, to: body.contact_email || null };
      state.items.push(item);
      save();
      box.replaceWith(handoffView(item.id, item.opts, item.to)); // the offer becomes the reference
      return "";
    });
    form.classList.add("handoff-offer");
    const box = h("div", { class: "note handoff" }, h("p", { text: "A person from the support team can take it from here." }), form);
    log.append(box);
    log.scrollTop = log.scrollHeight;
    form.querySelector(form.querySelector("input[readonly]") ? ".consent" : "input[type=email]").focus();
  }
  function keepSession(res) {
    const sid = res.headers.get(SESSION);
    if (sid) { state.sid = sid; save(); }
  }

  async function post(path, body) {
    const res = await fetch(BASE + path, {
      method: "POST", credentials: "omit", headers: headers("application/json"), body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(await problem(res));
    return res.json();
  }

  async function rate(bot, rating, comment) {
    try {
      await post("/v1/feedback", { message_id: bot.mid, rating, comment: comment || null });
      bot.rating = rating;
      save();
      return true;
    } catch (err) {
      log.append(errorView(err));
      return false;
    }
  }

  async function problem(res) {
    let detail = "";
    let fields = [];
    try {
      const body = await res.json();
      detail = typeof body.detail === "string" ? body.detail : "";
      if (Array.isArray(body.detail)) fields = body.detail.map((d) => String((d.loc || []).slice(-1)[0]));
    } catch (e) { /* not JSON */ }
    if (res.status === 422 && fields.includes("contact_email")) return "Please check the e-mail address.";
    if (res.status === 422) return "Please ask a question of at most 4000 characters.";
    if (res.status === 429) {
      const wait = parseInt(res.headers.get("Retry-After") || "", 10);
      return "Too many questions at once. Please try again " + (wait > 0 ? "in " + wait + " seconds." : "shortly.");
    }
    if (res.status >= 500) return "The assistant is unavailable right now. Please try again shortly.";
    return detail || "The request failed (" + res.status + ").";
  }

  const errorView = (err) => h("p", { class: "note error", role: "alert",
    text: err instanceof TypeError ? "Could not reach the assistant. Check your connection and try again." : err.message });

  // Server-Sent Events over fetch (EventSource cannot POST): blocks split by a blank line.
  async function* events(res) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      buf = (buf + (done ? decoder.decode() : decoder.decode(value, { stream: true }))).replace(/\r\n?/g, "\n");
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let kind = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) kind = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) yield [kind, JSON.parse(data.join("\n"))];
      }
      if (done) return;
    }
  }

  let busy = false;
  async function submit() {
    const question = input.value.trim();
    if (busy || !question) return;
    busy = true;
    send.disabled = true;
    log.setAttribute("aria-busy", "true");
    input.value = "";
    input.style.height = "";
    const asked = { r: "u", t: question };
    state.items.push(asked);
    log.append(userView(question));
    const bot = { text: "", cites: null };
    const view = botView(bot);
    log.append(view.node);
    log.scrollTop = log.scrollHeight;
    mark("ask");
    try {
      await stream(question, bot, view, true);
      bot.r = "a";
      state.items.push(bot); // the same object: a rating given later is saved with it
      human.hidden = false;
      view.done();
    } catch (err) {
      view.node.remove();
      state.items.splice(state.items.indexOf(asked), 1); // unanswered: not part of the conversation
      if (!input.value) input.value = question;
      log.append(errorView(err));
    } finally {
      save();
      busy = false;
      send.disabled = false;
      log.setAttribute("aria-busy", "false");
      log.scrollTop = log.scrollHeight;
    }
  }

  async function stream(question, bot, view, retry) {
    const res = await fetch(BASE + "/v1/chat", {
      method: "POST", credentials: "omit",
      headers: headers("text/event-stream"),
      body: JSON.stringify({ question, conversation_id: state.cid }),
    });
    keepSession(res);
    if (res.status === 404 && state.cid && retry) {
      state.cid = null; // the server no longer knows this conversation: start a new one
      return stream(question, bot, view, false);
    }
    if (!res.ok) throw new Error(await problem(res));
    for await (const [kind, data] of events(res)) {
      if (kind === "delta") {
        if (!bot.text) mark("first-token");
        bot.text += data.text || "";
        view.update();
      } else if (kind === "reset") {
        bot.text = "";
        view.update();
      } else if (kind === "citations") {
        bot.cites = data;
        view.update();
      } else if (kind === "done") {
        mark("done");
        Object.assign(bot, {
          text: data.answer, cites: data.citations, conf: data.confidence, eid: data.escalation_id,
          mid: data.message_id, flags: data.flags, handoff: data.handoff,
        });
        state.cid = data.conversation_id;
      } else if (kind === "error") {
        throw new Error(data.detail || "The assistant could not answer.");
      }
    }
    if (!bot.mid) throw new Error("The answer was cut off. Please ask again.");
  }

  function start() {
    document.body.append(host);
    redraw();
    if ((state.open && !matchMedia(NARROW).matches) || cfg.open === "true") toggle(true, false);
  }
  window.answerdesk = {
    open: () => toggle(true),
    close: () => toggle(false),
    ask: (q) => { toggle(true); input.value = String(q); submit(); },
  };
  // Host pages can offer ready-made questions: <a href="#" data-answerdesk-ask="How do I …?">
  document.addEventListener("click", (e) => {
    const t = e.target instanceof Element && e.target.closest("[data-answerdesk-ask]");
    if (t) { e.preventDefault(); window.answerdesk.ask(t.getAttribute("data-answerdesk-ask")); }
  });
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
